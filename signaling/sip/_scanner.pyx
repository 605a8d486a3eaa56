# cython: language_level=3
# The compiled SIP scanner: the text of _scanner_py.py, compiled by setup.py (see that file).
include "_scanner_py.py"
