#!/bin/sh
# The eduVPN "Source Routing" how-to's /etc/openvpn/up script, verbatim except for the ipcalc path: it
# was written for RHEL's ipcalc (-n/-p), which Debian ships as ipcalc-ng. The baseline of benchmark P1.
NETWORK4=$(/usr/bin/ipcalc-ng -n $ifconfig_local $ifconfig_netmask | cut -d '=' -f 2)
PREFIX4=$(/usr/bin/ipcalc-ng -p $4 $5 | cut -d '=' -f 2)
NETWORK6=$(/usr/bin/ipcalc-ng -n $ifconfig_ipv6_local/$ifconfig_ipv6_netbits | cut -d '=' -f 2)
PREFIX6=$ifconfig_ipv6_netbits

echo /usr/sbin/ip -4 ro add $NETWORK4/$PREFIX4 dev $dev table vpn
echo /usr/sbin/ip -6 ro add $NETWORK6/$PREFIX6 dev $dev table vpn

/usr/sbin/ip -4 ro add $NETWORK4/$PREFIX4 dev $dev table vpn
/usr/sbin/ip -6 ro add $NETWORK6/$PREFIX6 dev $dev table vpn
