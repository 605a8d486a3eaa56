# The compiled twin of _scanner_py.py (see _scanner.pyx): same interface, same results.
from signaling.sip._scanner_py import scan as scan
