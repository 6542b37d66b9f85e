# The clock fault test's driver in one process (a Python start costs seconds on an emulated
# machine): the node's clocks, then faults over $PSY_FAULT_SOCKET (each reply printed as its
# JSON line) and the clocks again.
import json, os, socket
from query import query


def fault(request):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["PSY_FAULT_SOCKET"])
    s.sendall(json.dumps(request).encode() + b"\n")
    print(s.makefile().readline().strip(), flush=True)


def clock(millis):
    fault({"fault": "clock", "node": "clk", "offset_millis": millis})


query("before")
clock(30000)
query("ahead")
fault({"fault": "kill", "node": "clk"})
fault({"fault": "start", "node": "clk"})
query("kept")
clock(-30000)
query("behind")
clock(0)
query("cleared")
