"""The SIP stack: message model and parser, sans-IO transactions and dialogs, one transport module."""
