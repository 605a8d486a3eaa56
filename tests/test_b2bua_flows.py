"""The B2BUA's call flows beyond the basic call, with real peers on loopback: SIPp as the
customer's phone and as the carriers, media through the in-process engine (or a real
rtpengine), and Python sockets standing in for a party's media endpoint where SIPp cannot check
what arrives (early-media timing, RFC 2833 events, RTP after a re-INVITE).

Every SIPp run is bounded by its -timeout and by the harness's deadline; every test ends by
checking that nothing leaked: no call in the node, no session in the media engine."""

from __future__ import annotations

import asyncio
import os
import re

import pytest

from tests.b2bua_harness import RTPENGINE, node_with, peers_listening, rtp_sink
from tests.sipp_calls import (
    CALLEE,
    assert_nothing_leaked,
    call,
    carrier,
    customer,
    ended_records,
    ok,
    run,
    start,
)


def tag_of(header: str | None) -> str | None:
    found = re.search(r";\s*tag=([^;>\s]+)", header or "")
    return found.group(1) if found else None


# -- 1. BYE from the callee -------------------------------------------------------------------------


def test_callee_bye_reaches_the_caller() -> None:
    async def main() -> None:
        async with node_with() as h:
            calls = await call(
                h,
                customer(h, "uac_wait_bye.xml"),
                carrier(h, "uas_hangup.xml", fill={"TALK_MS": "500"}),
            )
            uac, uas = calls.caller, calls.carrier
            # the carrier's BYE was answered 200 by the node; the caller got a BYE in its own dialog
            assert uas.only_received(200).cseq_method == "BYE"
            answer = uac.only_received(200)
            bye = uac.only_received("BYE")
            assert bye.header("Call-ID") == answer.header("Call-ID")
            assert tag_of(bye.header("From")) == tag_of(answer.header("To"))
            assert tag_of(bye.header("To")) == tag_of(answer.header("From"))
            [record] = await ended_records(h, 1)
            assert record.answer is not None and record.gateway == "carrier-0"
            assert record.termination == "Normal"
            assert record.ended_by == "callee"
            assert 0.4 <= record.duration < 3.0, record
            await assert_nothing_leaked(h)

    run(main())


# -- 2. CANCEL before the answer --------------------------------------------------------------------


def test_caller_cancel_while_ringing_cancels_the_carrier() -> None:
    async def main() -> None:
        async with node_with() as h:
            calls = await call(h, customer(h, "uac_cancel.xml"), carrier(h, "uas_ring.xml"))
            uac, uas = calls.caller, calls.carrier
            # caller: 200 for its CANCEL, 487 for its INVITE
            assert uac.only_received(200).cseq_method == "CANCEL"
            assert uac.only_received(487).cseq_method == "INVITE"
            # carrier: the CANCEL in the INVITE's transaction (same branch, same CSeq number), and
            # the ACK for its 487
            invite = uas.only_received("INVITE")
            cancel = uas.only_received("CANCEL")
            assert cancel.header("Via") == invite.header("Via")
            assert (cancel.header("CSeq") or "").split()[0] == (invite.header("CSeq") or "").split()[0]
            assert uas.only_received("ACK").cseq_method == "ACK"
            [record] = await ended_records(h, 1)
            assert record.answer is None and record.ring is not None
            assert record.termination == "CallerCancel"
            assert record.ended_by == "caller"
            await assert_nothing_leaked(h)

    run(main())


# -- 3. 183 with SDP: early media through the engine -------------------------------------------------


def test_early_media_reaches_the_caller_through_the_engine_before_the_answer() -> None:
    async def main() -> None:
        async with node_with() as h, rtp_sink(h.sink_ports[0]) as caller_media:
            calls = await call(
                h,
                customer(h, "uac_media_at.xml", fill={"RTP_PORT": str(caller_media.port), "TALK_MS": "300"}),
                carrier(h, "uas_early_media.xml", fill={"EARLY_MS": "1500"}),
            )
            uac, uas = calls.caller, calls.carrier
            # the 183's SDP points at the engine, not at the carrier's media port
            progress = uac.only_received(183)
            media = progress.sdp_media()
            assert media is not None, progress.body
            assert media[0] == "127.0.0.1" and h.in_media_window(media[1]), media
            assert media[1] != h.media_base
            # the carrier's offer pointed at the engine too
            offer = uas.only_received("INVITE").sdp_media()
            assert offer is not None and h.in_media_window(offer[1]), offer
            [record] = await ended_records(h, 1)
            assert record.answer is not None and record.ring is not None
            assert record.answer - record.ring >= 1.2
            # the announcement reached the caller's socket before the 200 (1.5 s of g711a.pcap,
            # 30 ms packets: 50; a margin for a loaded machine)
            early = [p for p in caller_media.audio() if p.at < record.answer]
            assert len(early) >= 30, (len(early), len(caller_media.packets))
            await assert_nothing_leaked(h)

    run(main())


# -- 4. re-INVITE from the caller --------------------------------------------------------------------


def test_caller_reinvite_hold_is_relayed_through_the_engine() -> None:
    async def main() -> None:
        async with (
            node_with() as h,
            rtp_sink(h.sink_ports[0]) as before,
            rtp_sink(h.sink_ports[1]) as after,
        ):
            calls = await call(
                h,
                customer(h, "uac_reinvite.xml"),
                carrier(
                    h, "uas_reinvite.xml", fill={"RTP_PORT": str(before.port), "RTP_PORT2": str(after.port)}
                ),
            )
            uac, uas = calls.caller, calls.carrier
            first, reinvite = uas.received("INVITE")
            # the re-offer the carrier sees points at the engine and keeps the hold
            media = reinvite.sdp_media()
            assert media is not None, reinvite.body
            assert media[0] == "127.0.0.1" and h.in_media_window(media[1]), media
            assert media[1] != h.media_base + 10  # not the caller's own port
            assert "a=sendonly" in reinvite.body, reinvite.body
            assert reinvite.header("Call-ID") == first.header("Call-ID")
            assert [m.cseq_method for m in uas.received("ACK")] == ["ACK", "ACK"]
            # the caller's answer (200 for CSeq 2) points at the engine and says recvonly
            [_, answer] = uac.received(200)[:2]
            assert answer.header("CSeq") == "2 INVITE", answer.header("CSeq")
            media = answer.sdp_media()
            assert media is not None and h.in_media_window(media[1]), answer.body
            assert "a=recvonly" in answer.body, answer.body
            # RTP flowed before the re-INVITE and still flows after it, now to the carrier's new
            # port (1.5 s of 30 ms packets after the re-INVITE: 50)
            assert len(before.audio()) >= 10, len(before.audio())
            assert len(after.audio()) >= 30, len(after.audio())
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal" and record.ended_by == "caller"
            await assert_nothing_leaked(h)

    run(main())


# -- 5. INFO DTMF ------------------------------------------------------------------------------------


def test_info_dtmf_becomes_rfc2833_events_toward_an_rfc2833_carrier() -> None:
    async def main() -> None:
        async with node_with(carriers=[{"dtmf": "rfc2833"}]) as h, rtp_sink(h.sink_ports[0]) as carrier_media:
            # (an INFO at the carrier would fail its scenario)
            calls = await call(
                h,
                customer(h, "uac_info_dtmf.xml"),
                carrier(h, "uas_answer_at.xml", fill={"RTP_PORT": str(carrier_media.port)}),
            )
            uac, uas = calls.caller, calls.carrier
            assert [m.cseq_method for m in uac.received(200)] == ["INVITE", "INFO", "BYE"]
            assert uas.received("INFO") == []
            events = carrier_media.telephone_events(101)
            assert events, f"no telephone-event among {len(carrier_media.packets)} RTP packets"
            assert {e.event for e in events} == {5}, events
            assert len({e.timestamp for e in events}) == 1, "one digit: one event timestamp"
            ends = [e for e in events if e.end]
            assert ends, "the digit's end packet (E bit) never came"
            # Duration=160 ms at 8 kHz = 1280 timestamp units
            assert {e.duration for e in ends} == {1280}, ends
            # the caller's audio went through too
            assert len(carrier_media.audio()) >= 30
            await assert_nothing_leaked(h)

    run(main())


def test_info_dtmf_is_sent_as_info_to_an_info_carrier() -> None:
    async def main() -> None:
        async with node_with(carriers=[{"dtmf": "info"}]) as h:
            calls = await call(
                h, customer(h, "uac_info_dtmf.xml"), carrier(h, "uas_info_dtmf.xml"), check=False
            )
            uac, uas = calls.caller, calls.carrier
            ok(caller=uac)
            info = uas.only_received("INFO")
            assert info.header("Content-Type") == "application/dtmf-relay"
            assert re.search(r"^Signal=5$", info.body, re.M), info.body
            duration = re.search(r"^Duration=(\d+)$", info.body, re.M)
            assert duration is not None and 100 <= int(duration.group(1)) <= 250, info.body
            ok(carrier=uas)
            await assert_nothing_leaked(h)

    run(main())


# -- 6. media timeout ----------------------------------------------------------------------------------


def test_media_timeout_hangs_up_both_legs() -> None:
    async def main() -> None:
        async with node_with(rtp_timeout=1.0) as h:
            # each gets a BYE and answers it
            calls = await call(h, customer(h, "uac_wait_bye.xml"), carrier(h, "uas_answer.xml"))
            calls.caller.only_received("BYE")
            calls.carrier.only_received("BYE")
            [record] = await ended_records(h, 1)
            assert record.termination == "RTP timeout"
            assert record.ended_by == "switch"
            assert 0.8 <= record.duration < 4.0, record
            await assert_nothing_leaked(h)

    run(main())


# -- 7. attempt timeouts --------------------------------------------------------------------------------


def test_invite_timeout_fails_over_to_the_next_carrier() -> None:
    async def main() -> None:
        async with node_with(carriers=[{}, {}], parameters={"SS_SIP_TIMEOUT_INVITE": 2}) as h:
            calls = await call(
                h,
                customer(h, "uac_basic.xml", trace=False),
                carrier(h, "uas_silent.xml", 0, fill={"WAIT_MS": "3000"}),
                carrier(h, "uas_answer.xml", 1, rtp_echo=True, trace=False),
            )
            first = calls.carrier
            # the silent carrier got the INVITE (and its retransmissions) but no CANCEL: none may
            # be sent before a provisional response (RFC 3261 9.1)
            assert first.received("INVITE")
            assert first.received("CANCEL") == []
            [record] = await ended_records(h, 1)
            assert record.attempts == 2 and record.gateway == "carrier-1"
            assert record.answer is not None and record.answer - record.start >= 1.9
            assert record.media_packets["callee"] >= 60, record.media_packets
            await assert_nothing_leaked(h)

    run(main())


def test_ringing_timeout_cancels_the_carrier_and_fails_the_call_with_408() -> None:
    async def main() -> None:
        async with node_with(parameters={"SS_SIP_TIMEOUT_RINGING": 2}) as h:
            # the carrier is CANCELled, answers 200 + 487 and gets its ACK
            calls = await call(
                h, customer(h, "uac_expect_failure.xml", fill={"CODE": "408"}), carrier(h, "uas_ring.xml")
            )
            calls.carrier.only_received("CANCEL")
            calls.caller.only_received(180)
            calls.caller.only_received(408)
            [record] = await ended_records(h, 1)
            assert record.answer is None and record.ring is not None
            assert record.final_status == 408
            assert record.end is not None and record.end - record.ring >= 1.9
            await assert_nothing_leaked(h)

    run(main())


# -- 7b. failover after early media ---------------------------------------------------------------------

#: the reference's until-connect mode, where a carrier's 18x and SDP do not stop the switching:
#: its early RTP does (SS_GATEWAY_SWITCH_STOP_AFTER_RTP_START, On by default; behaviour 35)
UNTIL_CONNECT = {"SS_SIP_STOP_SWITCH_AFTER_SDP": False, "SS_GATEWAY_SWITCH_UNTIL_CONNECT": True}
ANNOUNCEMENT = '<nop><action><exec play_pcap_audio="/usr/share/sip-tester/g711a.pcap"/></action></nop>'


@pytest.mark.parametrize("media", ["in-process", "rtpengine"])
@pytest.mark.parametrize("announced", [True, False], ids=["early-rtp", "sdp-only"])
def test_a_carrier_whose_early_media_was_heard_is_not_failed_over(announced: bool, media: str) -> None:
    """Carrier 0 answers 183 with SDP, plays an announcement through the engine (or sends no
    RTP), then 503. Heard: the caller gets the 503 and carrier 1 is never tried. Not heard:
    the call fails over to carrier 1, which answers. With our engine and a real rtpengine (the
    packets the engine received from the carrier's tag decide)."""
    if media == "rtpengine" and RTPENGINE is None:
        assert not os.environ.get("CI"), "rtpengine is not installed"
        pytest.skip("rtpengine-daemon is not installed (scripts/install.sh installs it)")

    async def main() -> None:
        async with node_with(carriers=[{}, {}], parameters=UNTIL_CONNECT, media=media) as h:
            early = carrier(
                h,
                "uas_early_media_fail.xml",
                0,
                fill={"PLAY": ANNOUNCEMENT if announced else "", "EARLY_MS": "1000"},
            )
            if announced:
                calls = await call(h, customer(h, "uac_expect_failure.xml", fill={"CODE": "503"}), early)
            else:
                calls = await call(
                    h, customer(h, "uac_basic.xml"), early, carrier(h, "uas_answer.xml", 1, trace=False)
                )
            calls.caller.only_received(183)
            [record] = await ended_records(h, 1)
            if announced:
                assert (record.attempts, record.gateway, record.final_status) == (1, "carrier-0", 503)
                assert record.termination == "SIP 503" and record.answer is None
            else:
                assert (record.attempts, record.gateway, record.final_status) == (2, "carrier-1", 200)
            await assert_nothing_leaked(h)

    run(main())


# -- 8. limits ---------------------------------------------------------------------------------------


def test_customer_max_calls_refuses_a_second_simultaneous_call_with_503() -> None:
    async def main() -> None:
        async with node_with(customer={"max_calls": 1}) as h:
            answering = start(carrier(h, "uas_answer.xml", trace=False))
            await peers_listening()
            first = start(customer(h, "uac_basic.xml", trace=False))
            # the first call is up (it lasts 2 s)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while len(h.node.calls) < 1 and loop.time() < deadline:
                await asyncio.sleep(0.05)
            assert len(h.node.calls) == 1
            second = await customer(h, "uac_expect_failure.xml", 1, fill={"CODE": "503"}, trace=False)
            # one call only reached the carrier (it takes one)
            ok(second_caller=second, first_caller=await first, carrier=await answering)
            refused, answered = await ended_records(h, 2)
            assert refused.final_status == 503 and refused.attempts == 0 and refused.gateway is None
            assert answered.termination == "Normal" and answered.answer is not None
            assert h.node.stats.calls_rejected == 1
            await assert_nothing_leaked(h)

    run(main())


def test_customer_max_cps_admits_two_of_five_calls_in_one_second() -> None:
    async def main() -> None:
        async with node_with(customer={"max_cps": 2}) as h:
            calls = await call(
                h,
                # five INVITEs within half a second
                customer(h, "uac_cps.xml", calls=5, rate=10),
                carrier(h, "uas_answer.xml", calls=2, trace=False),
            )
            assert len(calls.caller.received(503)) == 3
            records = await ended_records(h, 5)
            assert sorted(r.final_status or 0 for r in records) == [200, 200, 503, 503, 503]
            assert sum(1 for r in records if r.answer is not None) == 2
            assert h.node.stats.calls_rejected == 3
            await assert_nothing_leaked(h)

    run(main())


# -- 9. TCP ------------------------------------------------------------------------------------------


def test_call_over_tcp_end_to_end() -> None:
    async def main() -> None:
        async with node_with(carriers=[{"transport": "tcp"}]) as h:
            calls = await call(
                h,
                customer(h, "uac_basic.xml", extra=[*CALLEE, "-t", "t1"]),
                carrier(h, "uas_answer.xml", rtp_echo=True, extra=["-t", "t1"]),
            )
            uac, uas = calls.caller, calls.carrier
            assert uac.messages and {m.transport for m in uac.messages} == {"TCP"}
            assert uas.messages and {m.transport for m in uas.messages} == {"TCP"}
            invite = uas.only_received("INVITE")
            assert (invite.header("Via") or "").startswith("SIP/2.0/TCP"), invite.header("Via")
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal" and record.ended_by == "caller"
            assert record.media_packets["caller"] >= 60, record.media_packets
            assert record.media_packets["callee"] >= 60, record.media_packets
            await assert_nothing_leaked(h)

    run(main())


# -- 10. a real rtpengine -------------------------------------------------------------------------------


def test_basic_call_through_a_real_rtpengine() -> None:
    if RTPENGINE is None:
        assert not os.environ.get("CI"), "rtpengine is not installed"
        pytest.skip("rtpengine-daemon is not installed (scripts/install.sh installs it)")

    async def main() -> None:
        async with node_with(media="rtpengine") as h:
            calls = await call(h, customer(h), carrier(h, rtp_echo=True))
            uac, uas = calls.caller, calls.carrier
            # both SDPs point into rtpengine's port window
            offer = uas.only_received("INVITE").sdp_media()
            answer = uac.received(200)[0].sdp_media()
            assert offer is not None and h.in_media_window(offer[1]), offer
            assert answer is not None and h.in_media_window(answer[1]), answer
            [record] = await ended_records(h, 1)
            assert record.termination == "Normal"
            await assert_nothing_leaked(h)  # rtpengine's `list` is empty
            # the packet counts from rtpengine's statistics (2 s of 30 ms packets each way: ~67)
            assert record.media_packets.get("caller", 0) >= 60, record.media_packets
            assert record.media_packets.get("callee", 0) >= 60, record.media_packets

    run(main())
