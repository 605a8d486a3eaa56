"""CPS and concurrency admission (spec T29/T30, F.3 17-18, behaviour 79) and the overload guard."""

from __future__ import annotations

import math

import pytest

from signaling.sip.limits import (
    AdmissionControl,
    AdmissionTicket,
    KeyLimits,
    OverloadConfig,
    OverloadDecision,
    OverloadGuard,
    PerSourceLimiter,
    RateMeter,
    Rejection,
    TokenBucket,
    rejection_response,
    request_method,
)
from signaling.sip.message import Headers, Request

INVITE = b"INVITE sip:4420@ss.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\r\n"


def invite_request() -> Request:
    return Request(
        "INVITE",
        "sip:4420@ss.example",
        Headers(
            [
                ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1"),
                ("From", "<sip:1001@ss.example>;tag=a"),
                ("To", "<sip:4420@ss.example>"),
                ("Call-ID", "c"),
                ("CSeq", "1 INVITE"),
            ]
        ),
    )


# ------------------------------------------------------------------ token bucket


def test_token_bucket_burst_then_steady_rate():
    bucket = TokenBucket(rate=10, burst=10, now=0.0)
    assert [bucket.try_take(0.0) for _ in range(11)] == [True] * 10 + [False]
    assert not bucket.try_take(0.05)  # half a token
    assert bucket.try_take(0.1)
    assert not bucket.try_take(0.1)
    # a long pause refills only up to the burst
    assert bucket.available(1000.0) == 10.0


def test_token_bucket_ignores_time_going_backwards():
    bucket = TokenBucket(rate=1, now=100.0)
    assert bucket.try_take(100.0)
    assert not bucket.try_take(50.0)
    assert bucket.try_take(101.0)


def test_token_bucket_rejects_nonsense():
    with pytest.raises(ValueError, match="positive rate"):
        TokenBucket(0)
    with pytest.raises(ValueError, match="at least one token"):
        TokenBucket(0.5)


# ------------------------------------------------------------------ admission


@pytest.mark.parametrize("spacing", [0.0, 0.01, 0.045])
def test_max_cps_20_accepts_20_in_one_second_and_refuses_the_21st_with_503(spacing):
    ac = AdmissionControl()
    ac.configure("mgw:customer-a", KeyLimits(max_cps=20))
    results = [ac.admit(["mgw:customer-a"], spacing * i) for i in range(21)]
    assert all(isinstance(r, AdmissionTicket) for r in results[:20])
    assert results[20] == Rejection("mgw:customer-a", "cps", 503)
    # one second after the first admission there is room again: for one call when the 20 were
    # spread out (the second one is still inside the window), for more when they came at once
    assert isinstance(ac.admit(["mgw:customer-a"], 1.0), AdmissionTicket)
    assert isinstance(ac.admit(["mgw:customer-a"], 1.0), Rejection) is (spacing > 0)


def test_no_one_second_window_ever_holds_more_than_max_cps():
    ac = AdmissionControl()
    ac.configure("k", KeyLimits(max_cps=10))
    admitted = [i * 0.013 for i in range(1000) if isinstance(ac.admit(["k"], i * 0.013), AdmissionTicket)]
    assert 120 <= len(admitted) <= 130  # 13 s at 10 per second
    for j, t in enumerate(admitted):
        assert sum(1 for u in admitted[j:] if u < t + 1.0) <= 10


def test_token_bucket_per_source_hashlimit_profile():
    # the reference's hashlimit 10/s burst 20, htable-expire 30 s: 15 pkt/s for 10 s
    limiter = PerSourceLimiter(rate=10, burst=20, expire_s=30.0)
    passed = sum(limiter.allow("198.51.100.7", i / 15) for i in range(150))
    assert 115 <= passed <= 121  # the burst of 20 plus about 10/s
    assert all(limiter.allow("203.0.113.1", i / 10) for i in range(100))  # at 10/s nothing is dropped
    assert len(limiter) == 2
    limiter.allow("192.0.2.1", 50.0)
    assert len(limiter) == 1  # both idle for 30 s: forgotten


def test_per_source_table_is_bounded():
    limiter = PerSourceLimiter(rate=1, burst=1, max_sources=2)
    assert limiter.allow("a", 0.0)
    assert limiter.allow("b", 0.0)
    assert not limiter.allow("c", 0.0)
    assert len(limiter) == 2


def test_max_concurrent_30_refuses_the_31st_until_one_call_ends():
    ac = AdmissionControl()
    ac.configure("mgw:a", KeyLimits(max_concurrent=30, reject_status=486))
    tickets = [ac.admit(["mgw:a"], float(i)) for i in range(30)]
    assert all(isinstance(t, AdmissionTicket) for t in tickets)
    assert ac.admit(["mgw:a"], 31.0) == Rejection("mgw:a", "concurrency", 486)
    first = tickets[0]
    assert isinstance(first, AdmissionTicket)
    ac.release(first)
    ac.release(first)  # a second release must not free another slot
    assert ac.active("mgw:a") == 29
    assert isinstance(ac.admit(["mgw:a"], 32.0), AdmissionTicket)
    assert isinstance(ac.admit(["mgw:a"], 33.0), Rejection)


def test_refusal_on_one_key_takes_nothing_from_the_others():
    ac = AdmissionControl()
    ac.configure("mgw:a", KeyLimits(max_cps=5, max_concurrent=100))
    ac.configure("account:42", KeyLimits(max_concurrent=1))
    first = ac.admit(["mgw:a", "account:42"], 0.0)
    assert isinstance(first, AdmissionTicket)
    for _ in range(10):
        assert ac.admit(["mgw:a", "account:42"], 0.0) == Rejection("account:42", "concurrency", 503)
    assert ac.active("mgw:a") == 1
    # the refused attempts spent no CPS tokens of the gateway: 4 of its 5 remain
    others = [ac.admit(["mgw:a"], 0.0) for _ in range(5)]
    assert [isinstance(t, AdmissionTicket) for t in others] == [True] * 4 + [False]


def test_check_is_side_effect_free_and_unknown_keys_store_nothing():
    ac = AdmissionControl()
    ac.configure("rgw:carrier", KeyLimits(max_cps=1, max_concurrent=1))
    for _ in range(5):
        assert ac.check(["rgw:carrier", "unknown"], 0.0) is None
    ticket = ac.admit(["rgw:carrier", "unknown", "rgw:carrier"], 0.0)
    assert isinstance(ticket, AdmissionTicket)
    assert ticket.keys == ("rgw:carrier",)
    assert ac.active("unknown") == 0
    assert ac.check(["rgw:carrier"], 0.0) == Rejection("rgw:carrier", "concurrency", 503)


def test_reconfiguring_keeps_calls_in_progress():
    ac = AdmissionControl()
    ac.configure("k", KeyLimits(max_concurrent=5))
    for _ in range(3):
        ac.admit(["k"], 0.0)
    ac.configure("k", KeyLimits(max_concurrent=3))
    assert isinstance(ac.admit(["k"], 0.0), Rejection)


def test_rejection_response_is_stateless_503_with_retry_after():
    resp = rejection_response(invite_request(), 503, to_tag="t1", retry_after=10)
    assert resp.status == 503
    assert resp.reason == "Service Unavailable"
    assert resp.headers.get("Retry-After") == "10"
    assert resp.to.tag == "t1"
    assert resp.headers.get("Call-ID") == "c"


# ------------------------------------------------------------------ overload guard


def test_request_method_reads_only_the_request_line():
    assert request_method(INVITE) == "INVITE"
    assert request_method(b"BYE sip:x SIP/2.0\r\n") == "BYE"
    assert request_method(b"SIP/2.0 200 OK\r\n") is None
    assert request_method(b"\x00\x01garbage") is None
    assert request_method(b"HELLO") is None


def test_overload_guard_enters_and_leaves_with_hysteresis():
    guard = OverloadGuard(OverloadConfig(queue_high=1000, queue_low=200, min_hold=2.0))
    assert not guard.update(0.0, queue_depth=999)
    assert guard.update(1.0, queue_depth=1000)
    assert guard.update(1.5, queue_depth=500)  # between the marks: still overloaded
    assert guard.update(2.0, queue_depth=100)  # under the low mark, but held for 2 s
    assert not guard.update(3.0, queue_depth=100)
    assert not guard.update(4.0, queue_depth=500)  # between the marks: still fine


def test_overload_guard_cpu_and_rate_signals():
    guard = OverloadGuard(
        OverloadConfig(cpu_high=0.9, cpu_low=0.7, rate_high=5000, rate_low=3000, min_hold=0, cpu_window=0)
    )
    assert guard.update(0.0, cpu=0.95)
    assert guard.update(1.0, cpu=0.5, rate=4000)  # rate still above its low mark
    assert not guard.update(2.0, rate=2000)
    assert guard.update(3.0, rate=5000)


def test_overload_guard_cpu_signal_is_the_mean_of_its_window():
    # the node samples every 0.5 s; a 2 s window holds the last four samples
    guard = OverloadGuard(OverloadConfig(cpu_high=0.9, cpu_low=0.7, min_hold=0, cpu_window=2.0))
    now = 0.0
    for share in (0.8, 0.8, 0.8):
        assert not guard.update(now, cpu=share)
        now += 0.5
    # one busy half-second of a node running at 80 %: the mean is 0.8375, no overload
    assert not guard.update(now, cpu=0.95)
    assert guard.cpu == pytest.approx((0.8 * 3 + 0.95) / 4)
    # a loop that stays saturated: enters once the window's mean reaches the high mark
    entered = []
    for _ in range(4):
        now += 0.5
        entered.append(guard.update(now, cpu=1.0))
    assert entered == [False, True, True, True]  # means 0.8875, 0.9375, 0.9875, 1.0
    assert len(guard.cpu_samples) == 4
    # leaves only when the window's mean is under the low mark again
    left = []
    for _ in range(4):
        now += 0.5
        left.append(guard.update(now, cpu=0.3))
    assert left == [True, False, False, False]  # means 0.825, 0.65, 0.475, 0.3
    # a gap longer than the window leaves only the new sample
    now += 10.0
    assert not guard.update(now, cpu=0.5)
    assert list(guard.cpu_samples) == [(now, 0.5)]


def test_overload_guard_cpu_window_survives_a_clock_going_back():
    guard = OverloadGuard(OverloadConfig(cpu_high=0.9, cpu_low=0.7, min_hold=0))
    guard.update(100.0, cpu=1.0)
    assert guard.overloaded
    # samples from a later time than now are not averaged in
    guard.update(50.0, cpu=0.2)
    assert list(guard.cpu_samples) == [(50.0, 0.2)]
    assert guard.cpu == 0.2


def test_overload_guard_window_zero_is_the_latest_sample():
    guard = OverloadGuard(OverloadConfig(cpu_high=0.9, cpu_low=0.7, min_hold=0, cpu_window=0))
    assert not guard.update(0.0, cpu=0.8)
    assert guard.update(0.5, cpu=0.95)
    assert not guard.update(1.0, cpu=0.5)


@pytest.mark.parametrize("window", [-0.5, math.inf, math.nan])
def test_overload_config_refuses_a_bad_cpu_window(window: float):
    with pytest.raises(ValueError, match="cpu_window"):
        OverloadConfig(cpu_window=window)


def test_overload_admits_the_share_that_steers_the_cpu_to_its_target():
    guard = OverloadGuard(OverloadConfig(cpu_high=0.9, cpu_low=0.3, cpu_target=0.5, min_hold=0))
    guard.update(0.0, cpu=1.0)
    assert guard.overloaded and guard.admit_share == 0.5
    decisions = [guard.decide(INVITE) for _ in range(10)]
    # half the new calls pass, spread evenly; dialog traffic is never counted against the share
    assert decisions == [OverloadDecision.REJECT_503, OverloadDecision.ACCEPT] * 5
    assert guard.decide(b"BYE sip:x SIP/2.0\r\n") is OverloadDecision.ACCEPT
    # still saturated at half: half again
    guard.update(0.5, cpu=1.0)
    assert guard.admit_share == 0.25
    # the loop well under the target: the share grows back, never past all
    guard.update(1.0, cpu=0.2)
    assert guard.admit_share == pytest.approx(0.625)
    guard.update(1.5, cpu=0.1)
    assert guard.admit_share == 1.0
    assert guard.overloaded  # the window's mean (0.575) is still over the low mark...
    assert not guard.update(2.0, cpu=0.5)  # ...but all are admitted again and none is high


def test_overload_share_has_a_floor_while_the_cpu_alone_is_high():
    guard = OverloadGuard(OverloadConfig(min_admit=0.05, cpu_target=0.8))
    for i in range(40):
        guard.update(i * 0.5, cpu=1.0)
    assert guard.overloaded
    assert guard.admit_share == pytest.approx(0.05 * 0.8)
    passed = sum(guard.decide(INVITE) is OverloadDecision.ACCEPT for _ in range(100))
    assert passed == 4


def test_overload_refuses_every_new_request_when_the_queue_is_past_its_mark():
    guard = OverloadGuard(OverloadConfig(queue_high=100, queue_low=10, min_hold=0))
    guard.update(0.0, queue_depth=100, cpu=0.3)
    assert guard.overloaded and guard.admit_share == 0.0
    assert all(guard.decide(INVITE) is OverloadDecision.REJECT_503 for _ in range(20))
    # the queue drained: the CPU decides the share again
    guard.update(0.5, queue_depth=50, cpu=0.3)
    assert guard.admit_share == pytest.approx(0.02 * 0.85 / 0.3)


@pytest.mark.parametrize(("target", "floor"), [(-0.1, 0.02), (1.5, 0.02), (0.8, 0.0), (0.8, 1.5)])
def test_overload_config_refuses_a_bad_admission_target(target: float, floor: float):
    with pytest.raises(ValueError, match="cpu_target"):
        OverloadConfig(cpu_target=target, min_admit=floor)


def test_in_overload_new_requests_get_503_and_dialog_traffic_passes():
    guard = OverloadGuard(OverloadConfig(queue_high=10, queue_low=5, drop_queue=100, retry_after=7))
    assert guard.decide(INVITE) is OverloadDecision.ACCEPT
    guard.update(0.0, queue_depth=50)
    assert guard.decide(INVITE) is OverloadDecision.REJECT_503
    assert guard.decide(b"REGISTER sip:ss SIP/2.0\r\n") is OverloadDecision.REJECT_503
    for passing in (b"BYE sip:x SIP/2.0\r\n", b"ACK sip:x SIP/2.0\r\n", b"CANCEL sip:x SIP/2.0\r\n"):
        assert guard.decide(passing) is OverloadDecision.ACCEPT
    assert guard.decide(b"SIP/2.0 200 OK\r\n") is OverloadDecision.ACCEPT
    resp = guard.reject(invite_request(), to_tag="x")
    assert (resp.status, resp.headers.get("Retry-After")) == (503, "7")
    guard.update(0.1, queue_depth=100)
    assert guard.decide(INVITE) is OverloadDecision.DROP
    assert guard.counts[OverloadDecision.REJECT_503] == 2
    assert guard.counts[OverloadDecision.DROP] == 1
    # a refused request found to belong to a held call passes: counted apart, not as a refusal
    guard.pass_known()
    assert guard.counts[OverloadDecision.REJECT_503] == 1
    assert guard.counts[OverloadDecision.KNOWN_CALL] == 1


def test_overload_config_validation():
    with pytest.raises(ValueError, match=r"queue_low \(20\) <= queue_high \(10\)"):
        OverloadConfig(queue_high=10, queue_low=20)
    with pytest.raises(ValueError, match=r"cpu_low \(0.95\) must not exceed cpu_high \(0.9\)"):
        OverloadConfig(cpu_low=0.95)
    with pytest.raises(ValueError, match="together"):
        OverloadConfig(rate_high=10)
    with pytest.raises(ValueError, match=r"cpu_high must be more than 0"):
        OverloadConfig(cpu_high=0, cpu_low=0)


def test_rate_meter_slides_over_its_window():
    meter = RateMeter(window_s=1.0, slots=10)
    for i in range(100):
        meter.add(i * 0.01)  # 100 events in the first second, 10 per 100-ms slot
    assert meter.rate(0.999) == pytest.approx(100.0)
    assert meter.rate(1.55) == pytest.approx(40.0)  # the window is now 0.6-1.6 s
    assert meter.rate(5.0) == 0.0
    meter.add(5.0, 3)
    meter.add(1.0)  # far in the past: ignored
    assert meter.rate(5.05) == pytest.approx(3.0)
