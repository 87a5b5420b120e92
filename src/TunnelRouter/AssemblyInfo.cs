// Linux only: netlink, flock, network namespaces.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
