using System.Security.Cryptography;
using Zns.Target.Fabrics.Auth;

namespace Zns.Target.Tests;

/// <summary>
/// Known-answer tests of the DH-HMAC-CHAP building blocks. The expected values were computed outside this code:
/// keys by nvme-cli 2.3 (`nvme gen-dhchap-key -s 000102...1f -m 0` and `-m 1 -n nqn.host`), HMACs with Python's
/// hmac/hashlib, RFC 7919 primes and DH values from OpenSSL 3.0's built-in ffdhe groups and Python's pow().
/// </summary>
public sealed class AuthPrimitivesTests
{
    private const string HostNqn = "nqn.2014-08.org.nvmexpress:uuid:0000000a-0000-4000-8000-00000000000a";
    private const string SubNqn = "nqn.2026-01.io.zns:subsys";
    private static readonly byte[] Secret32 = [.. Enumerable.Range(0, 32).Select(i => (byte)i)];

    [Fact]
    public void NvmeCliKeys_Parse_AndTransformAsNvmeCliDoes()
    {
        // nvme gen-dhchap-key -s 000102...1f -m 0
        var plain = DhchapKey.Parse("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:");
        Assert.Equal(0, plain.Transformation);
        Assert.Equal(Secret32, plain.Transform("any"));
        Assert.Equal("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", plain.Encode());
        // nvme gen-dhchap-key -s 000102...1f -m 1 -n nqn.host stores HMAC-SHA-256(secret, "nqn.host" "NVMe-over-Fabrics").
        var cli = DhchapKey.Parse("DHHC-1:01:yI3mmuRg+UJDXk85BFwtwbGxRfqgGJmco5HpbAnDQnDuyhrN:");
        Assert.Equal(1, cli.Transformation);
        byte[] expected = DhchapKey.Parse("DHHC-1:00:yI3mmuRg+UJDXk85BFwtwbGxRfqgGJmco5HpbAnDQnDuyhrN:").Transform("");
        Assert.Equal(expected, DhchapKey.FromSecret(Secret32, 1).Transform("nqn.host"));
        // The key of the loopback tests' host, transformed with its NQN (Python: hmac.new(secret, nqn + b"NVMe-over-Fabrics", sha256)).
        Assert.Equal("8713e6dcad2d7c9d455aca7dc7af54c170f101adb53e8f6acf81e706c5495d0a",
            Convert.ToHexStringLower(DhchapKey.FromSecret(Secret32, 1).Transform(HostNqn)));
        Assert.Equal("DHHC-1:01:<32-byte secret>:", cli.ToString()); // never the secret
        // 48- and 64-byte secrets, trailing colon optional.
        Assert.Equal(48, DhchapKey.Parse(DhchapKey.Generate(48, 2).Encode().TrimEnd(':')).Length);
        Assert.Equal(64, DhchapKey.Parse(DhchapKey.Generate(64, 3).Encode()).Length);
    }

    [Theory]
    [InlineData("", "not a DH-HMAC-CHAP key")]
    [InlineData("DHHC-2:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "not a DH-HMAC-CHAP key")]
    [InlineData("DHHC-1:0:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "two digits")]
    [InlineData("DHHC-1:04:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "unknown transformation 04")]
    [InlineData("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaS:", "CRC-32")]
    [InlineData("DHHC-1:00:BAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+KfiaR:", "CRC-32")]
    [InlineData("DHHC-1:00:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=:", "36, 52 or 68 bytes")]
    [InlineData("DHHC-1:00:not*base64:", "36, 52 or 68 bytes")]
    [InlineData("DHHC-1:00::", "36, 52 or 68 bytes")]
    public void BadKeys_AreRefused_WithTheReason(string text, string reason)
    {
        Assert.False(DhchapKey.TryParse(text, out var key, out string error));
        Assert.Null(key);
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Responses_MatchIndependentHmacs()
    {
        byte[] kh = DhchapKey.FromSecret(Secret32, 1).Transform(HostNqn);
        byte[] c1 = [.. Enumerable.Range(0x40, 32).Select(i => (byte)i)];
        Assert.Equal("1e7cd7b4955439b794bb05b4e6a314b219ecc91566922366a3ff38c21311088c",
            Convert.ToHexStringLower(DhchapResponse.Host(DhchapHash.Sha256, kh, c1, 0x12345678, 0x0102, 0, HostNqn, SubNqn)));

        // Controller key: 48-byte secret, hh = 02 (SHA-384), transformed with the subsystem NQN.
        byte[] kc = DhchapKey.FromSecret([.. Enumerable.Range(100, 48).Select(i => (byte)i)], 2).Transform(SubNqn);
        Assert.Equal("50e4001484ce9873bca6781cd0ddd16bbcc9b56df2db15f68b3cb65319d3a8ac4cdf90abc057e60ee4d74ab6391d103f", Convert.ToHexStringLower(kc));
        byte[] c2 = [.. Enumerable.Range(0x80, 48).Select(i => (byte)i)];
        Assert.Equal("9b9710ba0be6b31ec11c56a07b91ee33f302a3d1c77a79dc85fc2b32da8be72cb36a7060db8f684ca90453455188e322",
            Convert.ToHexStringLower(DhchapResponse.Controller(DhchapHash.Sha384, kc, c2, 0xDEADBEEF, 0x0102, 0, HostNqn, SubNqn)));

        // Augmented challenge HMAC-SHA-512(SHA-512(Ks), C).
        byte[] ks = [.. Enumerable.Range(0, 256).Select(i => (byte)(i % 251))];
        byte[] c = [.. Enumerable.Range(0, 64).Select(i => (byte)i)];
        Assert.Equal("d5a39268f92ba232535b0caf5c9d1367ce6a6957aad5f3babf0270c3e10bcd9e89be023ab59abfbccc9df4ca3b831a745faae355678aed26d885ec782b61e0d3",
            Convert.ToHexStringLower(DhchapResponse.AugmentChallenge(DhchapHash.Sha512, ks, c)));
    }

    [Theory]
    [InlineData(DhGroup.Ffdhe2048, 256, "9cd3b7f336872f46c09428d1bbc19877a4d440512cda8d1c1cf0cd6e33698966")]
    [InlineData(DhGroup.Ffdhe3072, 384, "0eaf67db3a839156d5013494a5318a772b5697d270d721f37f092efc69ea5a17")]
    [InlineData(DhGroup.Ffdhe4096, 512, "4648414224ac881b3d0dc59b466f96d06a558278776807797ecf1f66ff397b3e")]
    [InlineData(DhGroup.Ffdhe6144, 768, "227ac9066b3ddd9e193670cda2388fa884f65ba0cf98b742d1fe77a6687c79c7")]
    [InlineData(DhGroup.Ffdhe8192, 1024, "770b14efaf6f049929c523113b3fa99a8d11dab1b18af3609590122075d19833")]
    public void Primes_AreOpenSslsRfc7919Groups_AndTheTestHostDerivesTheSame(byte id, int size, string sha256OfPrime)
    {
        DhGroup g = DhGroup.FromId(id)!;
        Assert.Equal(size, g.ValueLength);
        Assert.Equal(sha256OfPrime, Convert.ToHexStringLower(SHA256.HashData(g.PrimeBytes)));
        Assert.Equal(g.PrimeBytes, Zns.TestKit.Ffdhe.Prime(id).ToByteArray(isUnsigned: true, isBigEndian: true));
    }

    [Fact]
    public void DiffieHellman_MatchesPythonPow_AndRejectsDegenerateValues()
    {
        DhGroup g = DhGroup.FromId(DhGroup.Ffdhe2048)!;
        byte[] x = [.. Enumerable.Range(1, 32).Select(i => (byte)i)];
        x[0] |= 0x80;
        byte[] y = [.. Enumerable.Range(200, 32).Select(i => (byte)i)];
        byte[] gx = new byte[256], gy = new byte[256], shared = new byte[256];
        g.PublicValue(x, gx);
        g.PublicValue(y, gy);
        Assert.Equal("e895af9f94b47475728d275440199dc028d709d47d5ac25f3400fe005b3a9155", Convert.ToHexStringLower(SHA256.HashData(gx)));
        Assert.Equal("a8662ee35a0c303ab4fc6c6851f5d7c9c13b058ae4b9af99a848f27eb026ffce", Convert.ToHexStringLower(SHA256.HashData(gy)));
        Assert.True(g.TryComputeSharedSecret(x, gy, shared));
        Assert.Equal("5f6d9aa88bfde688067d0bc56f49ec590cb78788bc9e4a60aa32ef87cfb3c347", Convert.ToHexStringLower(SHA256.HashData(shared)));

        byte[] one = new byte[256];
        one[255] = 1;
        Assert.False(g.TryComputeSharedSecret(x, one, shared));
        byte[] pMinusOne = g.PrimeBytes;
        pMinusOne[255] -= 1;
        Assert.False(g.TryComputeSharedSecret(x, pMinusOne, shared));
        Assert.False(g.TryComputeSharedSecret(x, g.PrimeBytes, shared));
        Assert.False(g.TryComputeSharedSecret(x, new byte[256], shared));
        Assert.False(g.TryComputeSharedSecret(x, gy.AsSpan(1), shared)); // wrong length
        Assert.Null(DhGroup.FromId(DhGroup.Null));
        Assert.Null(DhGroup.FromId(6));
    }

    [Fact]
    public void MessageLayouts_HaveTheSpecifiedSizes()
    {
        Assert.Equal(6, AuthMessageHeader.Size);
        Assert.Equal(8, NegotiateMessage.HeaderSize);
        Assert.Equal(64, NegotiateMessage.DescriptorSize);
        Assert.Equal(16, ChallengeMessage.HeaderSize);
        Assert.Equal(16, ReplyMessage.HeaderSize);
        Assert.Equal(16, Success1Message.HeaderSize);
        Assert.Equal(16, Success2Message.Size);
        Assert.Equal(8, FailureMessage.Size);
        Assert.Equal(16 + 64 + 1024, ChallengeMessage.SizeFor(64, 1024));
        Assert.Equal(16 + 2 * 64 + 1024, ReplyMessage.SizeFor(64, 1024));
        Assert.Equal(0xE9010100u, AuthCommandLayout.DhchapCdw10);
        Assert.Equal(43, AuthCommandLayout.SecpOffset);

        // Round trips, with every field at its documented offset.
        byte[] m = new byte[ChallengeMessage.SizeFor(32, 256)];
        ChallengeMessage.Write(m, 0x1234, 1, 1, 0xA1B2C3D4, new byte[32], Enumerable.Repeat((byte)7, 256).ToArray());
        Assert.Equal([1, 1, 0, 0, 0x34, 0x12, 32, 0, 1, 1, 0x00, 0x01, 0xD4, 0xC3, 0xB2, 0xA1], m[..16]);
        Assert.True(ChallengeMessage.TryParse(m, out var ch));
        Assert.Equal(256, ch.DhValue.Length);
        byte[] n = new byte[72];
        NegotiateMessage.Write(n, 9, 0, [1, 2, 3], [0, 1, 2, 3, 4, 5]);
        Assert.True(NegotiateMessage.TryParse(n, out var neg, out _));
        Assert.Equal([1, 2, 3], neg.HashIds.ToArray());
        Assert.Equal([0, 1, 2, 3, 4, 5], neg.DhGroupIds.ToArray());
        Assert.Equal(5, n[NegotiateMessage.HeaderSize + 4 + AuthProtocol.MaxHashIds + 5]); // DH IDs start 30 bytes into the ID list
    }

    [Fact]
    public void EveryParser_RefusesTruncatedAndCorruptInput_WithoutThrowing()
    {
        byte[] negotiate = new byte[72];
        NegotiateMessage.Write(negotiate, 1, 0, [1], [0]);
        byte[] reply = new byte[ReplyMessage.SizeFor(32, 256)];
        ReplyMessage.Write(reply, 1, 5, new byte[32], new byte[32], true, new byte[256]);
        byte[] challenge = new byte[ChallengeMessage.SizeFor(48, 384)];
        ChallengeMessage.Write(challenge, 1, 2, 2, 3, new byte[48], new byte[384]);
        byte[] success1 = new byte[Success1Message.SizeFor(64)];
        Success1Message.Write(success1, 1, 64, new byte[64]);
        byte[] success2 = new byte[16];
        Success2Message.Write(success2, 1);
        byte[] failure = new byte[8];
        FailureMessage.Write(failure, AuthProtocol.Failure2, 1, AuthFailureReason.Failed);

        for (int len = 0; len < negotiate.Length; len++)
            Assert.False(NegotiateMessage.TryParse(negotiate.AsSpan(0, len), out _, out _));
        for (int len = 0; len < reply.Length; len++)
            Assert.False(ReplyMessage.TryParse(reply.AsSpan(0, len), out _));
        for (int len = 0; len < challenge.Length; len++)
            Assert.False(ChallengeMessage.TryParse(challenge.AsSpan(0, len), out _));
        for (int len = 0; len < success1.Length; len++)
            Assert.False(Success1Message.TryParse(success1.AsSpan(0, len), out _));
        for (int len = 0; len < 16; len++)
            Assert.False(Success2Message.TryParse(success2.AsSpan(0, len), out _));
        for (int len = 0; len < 8; len++)
            Assert.False(FailureMessage.TryParse(failure.AsSpan(0, len), AuthProtocol.Failure2, out _, out _));
        Assert.True(NegotiateMessage.TryParse(negotiate, out _, out _));
        Assert.True(ReplyMessage.TryParse(reply, out _));

        // Lengths in the header beyond the message, too many IDs, no DH-HMAC-CHAP descriptor, wrong types.
        byte[] bad = (byte[])reply.Clone();
        bad[10] = 0xFF; bad[11] = 0xFF;
        Assert.False(ReplyMessage.TryParse(bad, out _));
        bad = (byte[])negotiate.Clone();
        bad[10] = 31;
        Assert.False(NegotiateMessage.TryParse(bad, out _, out var why));
        Assert.Equal(AuthFailureReason.IncorrectPayload, why);
        bad = (byte[])negotiate.Clone();
        bad[8] = 2;
        Assert.False(NegotiateMessage.TryParse(bad, out _, out why));
        Assert.Equal(AuthFailureReason.ProtocolNotUsable, why);
        bad = (byte[])negotiate.Clone();
        bad[7] = 200; // NAPD past the data
        Assert.False(NegotiateMessage.TryParse(bad, out _, out _));
        Assert.False(ReplyMessage.TryParse(challenge, out _));
        Assert.False(Success2Message.TryParse(failure.Concat(new byte[8]).ToArray(), out _));

        var random = new Random(12);
        byte[] buffer = new byte[2048];
        for (int i = 0; i < 5000; i++)
        {
            int len = random.Next(buffer.Length);
            random.NextBytes(buffer.AsSpan(0, len));
            ReadOnlySpan<byte> s = buffer.AsSpan(0, len);
            NegotiateMessage.TryParse(s, out _, out _);
            ReplyMessage.TryParse(s, out _);
            ChallengeMessage.TryParse(s, out _);
            Success1Message.TryParse(s, out _);
            Success2Message.TryParse(s, out _);
            FailureMessage.TryParse(s, AuthProtocol.Failure2, out _, out _);
        }
    }
}
