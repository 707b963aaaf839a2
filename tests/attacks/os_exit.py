# Leave the process immediately, without cleanup, with a "success" code.
import os
os._exit(0)
