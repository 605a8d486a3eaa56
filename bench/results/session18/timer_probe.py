import sys, time, json
sys.argv = ["b2bua_path.py"] + sys.argv[1:]
import os; CODE = os.environ.get("CODE", "/work/main"); sys.path.insert(0, "/work/main/bench"); sys.path.insert(0, CODE)
from signaling.sip.transaction import TransactionLayer
from signaling.b2bua import schedule as sch
acc = {}
def wrap(cls, name):
    orig = getattr(cls, name)
    def w(*a, **k):
        t = time.perf_counter()
        try: return orig(*a, **k)
        finally:
            d = acc.setdefault(name, [0.0, 0]); d[0] += time.perf_counter() - t; d[1] += 1
    setattr(cls, name, w)
wrap(TransactionLayer, "handle_timeout")
wrap(TransactionLayer, "poll_timeout")
wrap(sch.Schedule, "_on_timer"); wrap(sch.Schedule, "_reschedule")
import b2bua_path
orig_one = b2bua_path.one_run
async def one(*a, **k):
    r = await orig_one(*a, **k)
    print("RESULT", r["cpu_ms_per_call"], file=sys.stderr)
    return r
b2bua_path.one_run = one
# reset accumulators when the measured calls start: patch run_calls second invocation
orig_rc = b2bua_path.run_calls
n = [0]
async def rc(h, first, calls, conc):
    n[0] += 1
    if n[0] == 2:
        acc.clear()
    return await orig_rc(h, first, calls, conc)
b2bua_path.run_calls = rc
try:
    b2bua_path.main()
finally:
    calls = int(sys.argv[sys.argv.index("--calls")+1])
    print({k: (round(v[0]/calls*1e6,1), round(v[1]/calls,2)) for k, v in acc.items()}, file=sys.stderr)
