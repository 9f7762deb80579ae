#!/bin/sh
# /usr/bin/eimzo-agent of the Debian package: the agent lives in its own Python environment, /usr/lib/eimzo-agent.
# -I: PYTHON* variables and the user's site-packages are ignored, so no code from outside the package runs in the
#     agent; -B: no byte-code is written beside the package's files (its postinst compiles them all).
exec /usr/lib/eimzo-agent/venv/bin/python3 -I -B -m eimzo_agent "$@"
