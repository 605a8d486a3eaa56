"""Prometheus metrics of a real node: SIPp calls (answered, failed over, refused, busy, with DTMF)
through the B2BUA and the in-process media engine, then a scrape parsed with
prometheus_client's own parser and the values checked against what happened."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from signaling.observe.metrics import build_registry, exposition
from tests.b2bua_harness import Harness, node_with
from tests.sipp_calls import call, carrier, customer, run

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(h: Harness) -> tuple[Samples, str]:
    body, content_type = exposition(build_registry(h.node))
    samples: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, content_type


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def settle(h: Harness, ended: int) -> None:
    for _ in range(60):
        if len(h.node.ended_records) >= ended and not h.node.calls:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)


def test_scrape_after_answered_failed_over_busy_and_refused_calls() -> None:
    async def main() -> None:
        async with node_with(carriers=[{}, {}]) as h:
            # 1. carrier-0 refuses with 503, the call fails over to carrier-1, which answers
            await call(
                h,
                customer(h),
                carrier(h, "uas_reject.xml", 0, fill={"CODE": "503", "REASON": "Service Unavailable"}),
                carrier(h, "uas_answer.xml", 1, rtp_echo=True),
            )
            await settle(h, 1)
            # 2. carrier-0 is busy: 486 stops the hunt and reaches the caller
            await call(
                h,
                customer(h, "uac_expect_failure.xml", fill={"CODE": "486"}),
                carrier(h, "uas_reject.xml", fill={"CODE": "486", "REASON": "Busy Here"}),
            )
            await settle(h, 2)
            # 3. a number nobody routes (the customer may only call 1...): refused, 403
            h.node.config.mapping_gateways[0].prefixes = ["1"]
            await call(h, customer(h, "uac_expect_failure.xml", extra=["-s", "4420"], fill={"CODE": "403"}))
            await settle(h, 3)

            s, content_type = scrape(h)
            assert content_type.startswith("text/plain; version=")
            assert value(s, "softswitch_calls_attempted_total") == 3
            assert value(s, "softswitch_calls_answered_total") == 1
            assert value(s, "softswitch_calls_active") == 0
            assert value(s, "softswitch_calls_completed_total", reason="Normal") == 1
            assert value(s, "softswitch_calls_failed_total", reason="SIP 486") == 1
            assert value(s, "softswitch_calls_failed_total", reason="CalleeNotAllowed") == 1
            assert value(s, "softswitch_calls_per_second") > 0
            # per gateway: carrier-0 tried twice (503, then 486), carrier-1 once and answered
            assert value(s, "softswitch_gateway_attempts_total", gateway="carrier-0") == 2
            assert value(s, "softswitch_gateway_attempts_total", gateway="carrier-1") == 1
            assert value(s, "softswitch_gateway_answered_total", gateway="carrier-1") == 1
            assert value(s, "softswitch_gateway_failures_total", gateway="carrier-0", kind="5xx") == 1
            assert value(s, "softswitch_gateway_failures_total", gateway="carrier-0", kind="4xx") == 1
            assert value(s, "softswitch_gateway_asr_ratio", gateway="carrier-0") == 0.0
            assert value(s, "softswitch_gateway_asr_ratio", gateway="carrier-1") == 1.0
            # the answered call: about 2 s of conversation; a PDD from the carrier's 180
            assert 1.5 < value(s, "softswitch_gateway_acd_seconds", gateway="carrier-1") < 5.0
            assert 0 < value(s, "softswitch_gateway_pdd_seconds", gateway="carrier-1") < 1.0
            assert value(s, "softswitch_gateway_pdd_measured_total", gateway="carrier-1") == 1
            assert value(s, "softswitch_gateway_up", gateway="carrier-0") == 1  # it answered (503)
            for gateway in ("carrier-0", "carrier-1"):
                assert value(s, "softswitch_gateway_calls_active", gateway=gateway, direction="out") == 0
            # SIP: three INVITEs in from the customer, three out to the carriers (messages on the
            # wire: a retransmission on a slow box counts again)
            assert value(s, "softswitch_sip_requests_total", direction="in", method="INVITE") >= 3
            assert value(s, "softswitch_sip_requests_total", direction="out", method="INVITE") >= 3
            assert value(s, "softswitch_sip_requests_total", direction="in", method="BYE") >= 1
            assert value(s, "softswitch_sip_responses_total", direction="in", **{"class": "2xx"}) >= 2
            assert value(s, "softswitch_sip_responses_total", direction="out", **{"class": "4xx"}) >= 2
            # media: 2 s of 20 ms packets each way through the engine, nothing lost on loopback
            assert value(s, "softswitch_media_packets_expected_total", party="caller") >= 60
            assert value(s, "softswitch_media_packets_lost_total", party="caller") == 0
            assert value(s, "softswitch_media_jitter_seconds_count", party="callee") == 1
            assert value(s, "softswitch_media_sessions") == 0
            assert value(s, "softswitch_media_packets_forwarded_total") >= 120
            assert value(s, "softswitch_media_transcoding_slots") > 0
            # every message came from the trusted customer or the carriers: none inspected
            assert value(s, "softswitch_defence_accepted_total", trust="trusted") == h.node.messages_received
            assert value(s, "softswitch_defence_accepted_total", trust="untrusted") == 0
            assert (
                value(s, "softswitch_overload_decisions_total", decision="accept") == h.node.messages_received
            )
            assert ("softswitch_cdr_queue_depth", ()) not in s  # no store: no CDR queue

    run(main(), 90)


def test_dtmf_digits_are_counted_by_how_they_travelled() -> None:
    async def main() -> None:
        async with node_with(carriers=[{"dtmf": "rfc2833"}]) as h:
            await call(h, customer(h, "uac_info_dtmf.xml"), carrier(h, rtp_echo=True))
            await settle(h, 1)
            s, _ = scrape(h)
            # the caller's SIP INFO digit, played toward the carrier as RFC 2833 events
            assert value(s, "softswitch_dtmf_events_total", direction="received", via="info") == 1
            assert value(s, "softswitch_dtmf_events_total", direction="played", via="rfc2833") == 1
            assert value(s, "softswitch_sip_requests_total", direction="in", method="INFO") == 1

    run(main(), 90)


def test_openmetrics_when_asked() -> None:
    async def main() -> None:
        async with node_with() as h:
            body, content_type = exposition(
                build_registry(h.node, process=False), accept="application/openmetrics-text; version=1.0.0"
            )
            assert content_type.startswith("application/openmetrics-text")
            assert body.rstrip().endswith(b"# EOF")
            assert b"softswitch_calls_attempted_total 0.0" in body

    run(main(), 90)
