# Prints a label and how many seconds node clk's clocks (server.py) are from ours:
# monotonic, boottime, realtime. Run as `python3 query.py LABEL`, or imported (driver.py).
import socket, sys, time


def query(label):
    conn = socket.create_connection(("clk", 7000))
    mono, boot, real = map(float, conn.makefile().read().split())
    print(label, round(mono - time.monotonic()),
          round(boot - time.clock_gettime(time.CLOCK_BOOTTIME)),
          round(real - time.time()), flush=True)


if __name__ == "__main__":
    query(sys.argv[1])
