# Issue 13: the instructor reads logs in a terminal: clear the screen, set the window
# title, write to the clipboard (OSC 52), overwrite lines with carriage returns, reverse
# text direction. Logs must keep none of these control sequences.
import sys
payload = ("\x1b[2J\x1b[H\x1b]0;pwned title\x07\x1b]52;c;ZWNobyBwd25lZA==\x07"
           "grade: 0/10\rgrade: 10/10\x1b[1A\x1b[31mRED\x1b[0m \u202eevil\u202c \x9b31m\x07\x08\x00")
print(payload)
print(payload, file=sys.stderr)
