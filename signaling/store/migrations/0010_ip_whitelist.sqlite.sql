-- Version 10: the account's IP whitelist (reference behaviour 60): the source networks its
-- phones may REGISTER and call from, a JSON list of IPs and CIDR prefixes; empty (every account
-- before this version) = no restriction (docs/sip-auth-registrar-limits.md, "IP whitelist").

ALTER TABLE account ADD COLUMN ip_whitelist TEXT NOT NULL DEFAULT '[]';
