namespace TunnelRouter.Kernel.Netlink;

/// <summary>
/// nf_tables over netlink (NETLINK_NETFILTER), for one question: does a table exist? Equivalent to the exit status
/// of <c>nft list table inet tunnel_router</c>, without starting nft: apply checks on every run that no table of
/// its own is left over, and a policy without Marks then needs no nft process at all.
/// </summary>
internal static class NetlinkNftTables
{
    const ushort NFNL_SUBSYS_NFTABLES = 10, NFT_MSG_GETTABLE = 1, NFTA_TABLE_NAME = 1;

    /// <summary>NFPROTO_INET: the family of an inet table.</summary>
    public const byte Inet = 1;

    /// <summary>True or false as nf_tables answers; null when it gives no answer (no nfnetlink in this kernel,
    /// nf_tables not loadable, not permitted): whoever asks then asks nft.</summary>
    public static bool? Exists(byte family, string name)
    {
        NetlinkSocket socket;
        try { socket = NetlinkSocket.Open(Nl.NETLINK_NETFILTER); }
        catch (NetlinkException) { return null; }
        using (socket)
        {
            var w = new NetlinkWriter();
            var seq = socket.NextSequence();
            w.BeginMessage((ushort)((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE), Nl.NLM_F_REQUEST, seq);
            w.Put(new nfgenmsg { nfgen_family = family });
            w.AttrString(NFTA_TABLE_NAME, name);
            w.EndMessage();
            try
            {
                // The answer is the table (NFT_MSG_NEWTABLE) or an error.
                return socket.Request(w, seq, (in nlmsghdr _, ReadOnlySpan<byte> _) => { }) switch
                {
                    0 => true,
                    Errno.ENOENT => false,
                    _ => null,
                };
            }
            catch (NetlinkException) { return null; }
        }
    }
}
