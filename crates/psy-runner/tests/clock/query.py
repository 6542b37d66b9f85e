# Prints its argument and how many seconds node clk's clocks (server.py) are from ours:
# monotonic, boottime, realtime.
import socket, sys, time
mono, boot, real = map(float, socket.create_connection(("clk", 7000)).makefile().read().split())
print(sys.argv[1], round(mono - time.monotonic()), round(boot - time.clock_gettime(time.CLOCK_BOOTTIME)), round(real - time.time()))
