# Issue 13: read the queue another sandbox left behind (key of sysv_queue_writer.py);
# it sorts after the writer so it runs later in the same grading run.
import ctypes, time
libc = ctypes.CDLL(None, use_errno=True)
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 64)]
found = []
for _ in range(10):
    qid = libc.msgget(0x4D4C3133, 0)
    if qid >= 0:
        msg = Msg()
        if libc.msgrcv(qid, ctypes.byref(msg), 64, 0, 0o4000) >= 0:  # IPC_NOWAIT
            found.append(msg.mtext)
    if libc.shmget(0x4D4C3134, 0, 0) >= 0:
        found.append(b"shm")
    if found:
        break
    time.sleep(0.1)
print("sysv found", found, flush=True)
