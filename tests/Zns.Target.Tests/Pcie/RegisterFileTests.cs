using Zns.Nvme;
using Zns.Nvme.Layouts;
using Zns.Target.Controller;
using static Zns.Target.Tests.TestHost;

namespace Zns.Target.Tests.Pcie;

/// <summary>One register file: BAR0 and Fabrics Property Get/Set reach the same controller registers.</summary>
public sealed class RegisterFileTests
{
    [Fact]
    public void Bar0_cap_is_the_controllers_cap_and_the_controller_exists_before_enable()
    {
        using var f = new PcieFixture();
        NvmeController controller = Assert.Single(f.Target.Subsystem.Controllers);
        Assert.Equal(controller.CapValue, f.Driver.Device.Read64(0));
        Assert.Equal(controller.CapValue, f.Function.Capabilities);
        Assert.True(controller.TryGetProperty(ControllerProperties.Cc, 4, out ulong cc));
        Assert.Equal(0UL, cc);
    }

    [Fact]
    public void Admin_queue_registers_are_the_controllers_with_reserved_bits_and_alignment_masked()
    {
        using var f = new PcieFixture();
        f.Driver.Device.Write32(0x24, 0xFFFF_FFFF);
        f.Driver.Device.Write64(0x28, 0x1_2345_6789);
        f.Driver.Device.Write64(0x30, 0xABCD_EFFF);
        Assert.Equal(0x0FFF_0FFFu, f.Driver.Device.Read32(0x24));
        Assert.Equal(0x1_2345_6000UL, f.Driver.Device.Read64(0x28));
        Assert.Equal(0xABCD_E000UL, f.Driver.Device.Read64(0x30));
        NvmeController controller = Assert.Single(f.Target.Subsystem.Controllers);
        Assert.True(controller.TryGetProperty(ControllerProperties.Asq, 8, out ulong asq));
        Assert.Equal(0x1_2345_6000UL, asq);
    }

    [Fact]
    public void A_function_reset_makes_a_new_controller_with_registers_at_their_defaults()
    {
        using var f = new PcieFixture();
        f.Driver.Enable();
        f.Driver.WaitReady();
        ushort before = Assert.Single(f.Target.Subsystem.Controllers).Cntlid;
        f.Function.ResetFunction("test");
        Assert.NotEqual(before, Assert.Single(f.Target.Subsystem.Controllers).Cntlid);
        Assert.Equal(0u, f.Driver.Csts);
        Assert.Equal(0u, f.Driver.Device.Read32(0x24));
        Assert.Equal(0UL, f.Driver.Device.Read64(0x28));
    }

    [Fact]
    public void Fabric_property_get_and_set_of_the_admin_queue_registers_stay_invalid_field()
    {
        using var host = new TestHost();
        var (admin, _) = host.Open();
        Ok(Run(admin, Sqe.Connect(0, 31, 0), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn)));
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Run(admin, Sqe.PropertyGet(ControllerProperties.Aqa, false)).Status);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Run(admin, Sqe.PropertyGet(ControllerProperties.Asq, true)).Status);
        Assert.Equal(NvmeStatus.InvalidField.WithDnr(), Run(admin, Sqe.PropertySet(ControllerProperties.Acq, 0x1000)).Status);
    }

    [Fact]
    public void Fabric_queue_admin_opcodes_stay_invalid_opcode()
    {
        using var host = new TestHost();
        var (admin, _) = host.Open();
        Ok(Run(admin, Sqe.Connect(0, 31, 0), Sqe.ConnectData(host.Target.Subsystem.Nqn, HostNqn)));
        Ok(Run(admin, Sqe.PropertySet(ControllerProperties.Cc, 0x00460061)));
        foreach (byte opcode in new[] { AdminOpcode.CreateIoCompletionQueue, AdminOpcode.CreateIoSubmissionQueue,
            AdminOpcode.DeleteIoSubmissionQueue, AdminOpcode.DeleteIoCompletionQueue, AdminOpcode.DoorbellBufferConfig })
        {
            var sqe = default(SubmissionQueueEntry);
            sqe.SetOpcode(opcode);
            sqe.SetCdw(10, 1 | (15u << 16));
            sqe.SetCdw(11, 1 | (1u << 16));
            Assert.Equal(NvmeStatus.InvalidOpcode.WithDnr(), Run(admin, sqe).Status);
        }
    }

    [Fact]
    public void A_create_io_sq_the_transport_refuses_leaves_number_of_queues_settable()
    {
        using var f = new PcieFixture();
        f.Driver.Enable();
        f.Driver.WaitReady();
        Assert.True(f.Driver.CreateCq(1, 16, vector: 1).IsSuccess);
        // Queue memory outside guest RAM: the transport refuses, so no I/O queue was created.
        Assert.False(f.Driver.CreateSq(1, 16, cqid: 1, address: 0x7000_0000_0000).IsSuccess);
        SubmissionQueueEntry queues = f.Driver.NewSqe(AdminOpcode.SetFeatures);
        queues.SetCdw(10, FeatureId.NumberOfQueues);
        queues.SetCdw(11, 0x0003_0003);
        Assert.Equal(NvmeStatus.Success, f.Driver.Execute(0, queues).Status);
        f.Driver.CreateIoQueuePair(2);
        Assert.Equal(NvmeStatus.CommandSequenceError.WithDnr(), f.Driver.Execute(0, queues).Status);
    }
}
