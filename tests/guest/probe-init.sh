#!/bin/sh
# PID 1 of the probe boot that decides whether User-Mode Linux runs on this machine: it only says so.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "@@ ready"
echo "@@ end"
poweroff -f
