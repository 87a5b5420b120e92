using TunnelRouter.Config;
using TunnelRouter.Host;
using TunnelRouter.Kernel;
using Xunit;

namespace TunnelRouter.Tests.Unit;

/// <summary>Issue 21, invariant 12: a policy file that does not load is replaced, for the hook and watch, by the last good
/// policy a successful run kept under the run directory — loudly, and only when there is one.</summary>
public class LastGoodPolicySpecs : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("tunnel-router-lastgood-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    const string Good = "{ \"Table\": \"vpn2\", \"PoolRules\": true }";

    string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return path;
    }

    (TunnelRouterOptions Options, string? Path, List<string> Said, string? Loaded) Load(string policy)
    {
        var said = new List<string>();
        string? loaded = null;
        var env = new Dictionary<string, string> { ["TUNNEL_ROUTER_LOCKFILE"] = Path.Combine(_dir, "lock") };
        var (options, path) = ConfigLoader.LoadOrLastGood(env, [], policy, true, o => LastGoodPolicy.ForLock(o.LockFile).Path, null,
            t => loaded = t, said.Add);
        return (options, path, said, loaded);
    }

    [Fact]
    public void A_successful_run_keeps_the_policy_root_only_and_rewrites_it_only_when_it_changed()
    {
        var copy = new LastGoodPolicy(_dir);

        copy.Save(Good);
        // Dated back: a rewrite shows however coarse the file system's clock or fast the machine.
        var written = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(copy.Path, written);
        copy.Save(Good);

        Assert.Equal(Good, File.ReadAllText(copy.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(copy.Path));
        Assert.Equal(written, File.GetLastWriteTimeUtc(copy.Path));
        Assert.Equal(Path.Combine(_dir, "last-good.json"), LastGoodPolicy.ForLock(Path.Combine(_dir, "lock")).Path);
    }

    [Fact]
    public void A_policy_that_does_not_load_is_replaced_by_the_last_good_one_with_one_line_naming_its_error()
    {
        new LastGoodPolicy(_dir).Save(Good);
        var broken = Write("policy.json", "{ \"Table\": \"vpn2\" \"PoolRules\": true }");

        var (options, path, said, loaded) = Load(broken);

        Assert.Equal("vpn2", options.Table);
        Assert.True(options.PoolRules);
        Assert.Equal(Path.Combine(_dir, "last-good.json"), path);
        Assert.Null(loaded);
        var line = Assert.Single(said);
        // The policy is 0600: its error says where and what was expected, never what is there (issue 22).
        Assert.StartsWith($"the policy does not load ({broken}: line 1, column 19: expected ',' or '}}')", line);
        Assert.EndsWith($"running on the last good policy, {Path.Combine(_dir, "last-good.json")}, until it is fixed", line);
    }

    [Fact]
    public void Without_a_last_good_policy_the_error_stands_and_a_good_policy_is_told_as_loaded()
    {
        var broken = Write("policy.json", "{ \"Table\": ");
        var good = Write("good.json", Good);

        Assert.Throws<TunnelRouter.InputException>(() => Load(broken));
        var (_, path, said, loaded) = Load(good);

        Assert.Equal(good, path);
        Assert.Empty(said);
        Assert.Equal(Good, loaded);
    }

    [Fact]
    public void A_policy_of_several_megabytes_is_kept_and_compared_a_block_at_a_time()
    {
        // 100,000 route lines, a character outside the BMP across a block's edge: larger than any file read back whole.
        var big = "{ \"Routes\": [\n" + string.Join(",\n", Enumerable.Range(0, 100_000).Select(i => $"  \"blackhole 10.{i / 65536}.{i / 256 % 256}.{i % 256}/32 table 100\"")) + "\n] }\n";
        big = big.Insert(16383, "\U0001F512");
        var copy = new LastGoodPolicy(_dir);

        copy.Save(big);
        // Dated back: a rewrite shows however coarse the file system's clock or fast the machine.
        var written = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(copy.Path, written);
        copy.Save(big);

        Assert.True(new FileInfo(copy.Path).Length > OwnedFile.MaxBytes);
        Assert.Equal(big, File.ReadAllText(copy.Path));
        Assert.Equal(written, File.GetLastWriteTimeUtc(copy.Path)); // the same text: not written again
        Assert.True(OwnedFile.Holds(copy.Path, big));
        Assert.False(OwnedFile.Holds(copy.Path, big[..^1]));
        Assert.False(OwnedFile.Holds(copy.Path, big + " "));
        Assert.False(OwnedFile.Holds(copy.Path, big.Replace("10.1.17.112/32 ", "10.1.17.113/32 ")));
    }
}
