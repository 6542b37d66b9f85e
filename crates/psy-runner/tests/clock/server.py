# A node's clocks as three numbers on port 7000: CLOCK_MONOTONIC, CLOCK_BOOTTIME (as
# /proc/uptime shows it) and CLOCK_REALTIME. Used by the clock fault tests (psy-runner, psy-cli).
import socket, time
s = socket.create_server(("", 7000))
while True:
    c, _ = s.accept()
    uptime = open("/proc/uptime").read().split()[0]
    c.sendall(("%f %s %f" % (time.monotonic(), uptime, time.time())).encode())
    c.close()
