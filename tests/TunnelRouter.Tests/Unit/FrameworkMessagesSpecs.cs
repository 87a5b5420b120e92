using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>The published binary carries the framework's messages as resource keys; what reaches a person is words.</summary>
public class FrameworkMessagesSpecs
{
    public static TheoryData<Exception, string> Cases => new()
    {
        { new UnauthorizedAccessException("UnauthorizedAccess_IODenied_Path, /run/tunnel-router/lock", new IOException("Read-only file system", 30)),
            "/run/tunnel-router/lock: Read-only file system" },
        { new UnauthorizedAccessException("UnauthorizedAccess_IODenied_Path, /etc/iproute2/rt_tables.d"), "/etc/iproute2/rt_tables.d: permission denied" },
        { new FileNotFoundException("IO_FileNotFound_FileName, /etc/iproute2/rt_tables"), "/etc/iproute2/rt_tables: no such file or directory" },
        { new DirectoryNotFoundException("IO_PathNotFound_Path, /var/log/none/tr.log"), "/var/log/none/tr.log: a directory on its path does not exist" },
        { new IOException("IO_FileExists_Name, /run/x"), "/run/x: already exists" },
        { new FormatException("Error_JSONParseError"), "jsonparse error" },
        { new InvalidCastException("Arg_InvalidCastException"), "invalid cast exception" },
        // Words already (strerror from the runtime, or a framework that kept its sentences) pass through.
        { new IOException("No space left on device : '/run/x'", 28), "No space left on device : '/run/x'" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_resource_key_becomes_words(Exception e, string expected)
    {
        Assert.Equal(expected, FrameworkMessages.Of(e));
    }
}
