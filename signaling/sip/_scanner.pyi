# The compiled build of _scanner_py.py (same source, see _scanner.pyx): same interface.
from signaling.sip._scanner_py import scan as scan
