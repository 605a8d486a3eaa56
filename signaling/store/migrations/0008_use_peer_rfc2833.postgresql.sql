-- Version 8: "Use peer RFC2833 ability" on mapping and routing gateways (reference DTMF §4.2,
-- behaviours 19-21). Checked (the default, what every gateway did before): telephone-event
-- reaches the gateway only when the other party offered it. Unchecked: an offer toward the
-- gateway gains telephone-event on its rfc2833_payload (docs/decisions.md, "DTMF").

ALTER TABLE mapping_gateway ADD COLUMN use_peer_rfc2833 BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE routing_gateway ADD COLUMN use_peer_rfc2833 BOOLEAN NOT NULL DEFAULT TRUE;
