# Issue 13: a SysV message queue with a known key, left behind for a later student's
# sandbox to read (an IPC namespace per sandbox makes it vanish with the run).
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000
qid = libc.msgget(0x4D4C3133, IPC_CREAT | 0o666)
class Msg(ctypes.Structure):
    _fields_ = [("mtype", ctypes.c_long), ("mtext", ctypes.c_char * 64)]
msg = Msg(1, b"answers: 1.0 2.0 3.0")
print("queue", qid, "send", libc.msgsnd(qid, ctypes.byref(msg), 64, 0))
shm = libc.shmget(0x4D4C3134, 1 << 20, IPC_CREAT | 0o666)
print("shm", shm)
