namespace TunnelRouter.Core;

/// <summary>Pure helpers between the parsed policy and the planner.</summary>
public static class PolicyState
{
    /// <summary>
    /// A route written without "dev" ("default via 192.168.1.1 table vpn") reads back from the kernel
    /// with the device the kernel chose. Where an owned route differs from a desired one only by that
    /// device, the desired route is the one in the kernel, so a second apply changes nothing.
    /// </summary>
    public static KernelState Settle(KernelState desired, KernelState current)
    {
        var routes = desired.Routes.Select(want =>
            want.Device is not null || want.Gateway is null ? want
            : current.Routes.FirstOrDefault(have => have.Device is not null && have.Protocol == want.Protocol
                                                    && (have with { Device = null }) == want) ?? want).ToList();
        return new KernelState(routes, desired.Rules);
    }
}
