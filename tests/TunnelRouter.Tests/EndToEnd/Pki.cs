using TunnelRouter.Tests.Support;

namespace TunnelRouter.Tests.EndToEnd;

/// <summary>
/// A throwaway certificate authority with a server and two client certificates, made with openssl when the
/// first end-to-end test needs it and deleted when the test process exits: keys are never checked in.
/// EC P-256 keys take milliseconds; "dh none" on the server then means ECDHE only.
/// </summary>
public sealed class Pki
{
    static readonly Lazy<Pki> Shared = new(() => new Pki(), LazyThreadSafetyMode.ExecutionAndPublication);

    public static Pki Instance => Shared.Value;

    public string Dir { get; }

    public string Ca => Path.Combine(Dir, "ca.crt");
    public string Cert(string name) => Path.Combine(Dir, name + ".crt");
    public string Key(string name) => Path.Combine(Dir, name + ".key");

    public static readonly string[] Clients = ["client1", "client2"];

    Pki()
    {
        if (!File.Exists("/usr/bin/openssl")) throw new InvalidOperationException("end-to-end tests need openssl; ./test.sh installs it");
        Dir = Directory.CreateTempSubdirectory("tunnel-router-pki-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(Dir, true); } catch (IOException) { } };

        OpenSsl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", Key("ca"), "-out", Ca, "-days", "2", "-subj", "/CN=tunnel-router test CA");
        Issue("server", "serverAuth");
        foreach (var client in Clients) Issue(client, "clientAuth");
    }

    void Issue(string name, string usage)
    {
        var csr = Path.Combine(Dir, name + ".csr");
        var ext = Path.Combine(Dir, name + ".ext");
        File.WriteAllText(ext, $"extendedKeyUsage={usage}\nkeyUsage=digitalSignature\n");
        OpenSsl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", Key(name), "-out", csr, "-subj", "/CN=" + name);
        OpenSsl("x509", "-req", "-in", csr, "-CA", Ca, "-CAkey", Key("ca"), "-CAcreateserial",
            "-out", Cert(name), "-days", "2", "-extfile", ext);
    }

    static void OpenSsl(params string[] args) => Sh.Run("/usr/bin/openssl", args).ShouldSucceed();
}
