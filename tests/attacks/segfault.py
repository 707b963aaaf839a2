# Crash the interpreter with a segmentation fault.
import ctypes
ctypes.string_at(0)
