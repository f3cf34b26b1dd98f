/// The program that delays and drops a host's frames, run with `python3 -c` inside the bridge's
/// namespace.
///
/// Why not `tc qdisc … netem`: the kernels this runs on are built without it (this VM's config
/// has `# CONFIG_NET_SCH_NETEM is not set`, and no `gact` action for random drops either), and a
/// test harness must not depend on a kernel option that only some machines have. So an impaired
/// host's bridge-side veth end (`h<i>`) is taken off the bridge and a second veth pair
/// (`i<i>` on the bridge, `r<i>` free) is made; this relay copies frames between `h<i>` and
/// `r<i>` through AF_PACKET sockets, holding each one for the delay and dropping each with the
/// loss probability, in both directions.
///
/// The sockets use PACKET_VNET_HDR: each frame comes with its virtio-net header (checksum still to
/// compute, segmentation still to do), and sending it back with that header lets the kernel finish
/// the job, so veth's offloads can stay on. Frames the socket sees leaving its own interface
/// (PACKET_OUTGOING: the relay's own sends) are skipped. `ready` on stdout says the sockets are
/// bound; a seed makes the drops of one run repeatable.
enum ImpairmentRelay {
    /// argv: interface-a interface-b delay-ms loss-probability seed
    static let script = #"""
    import heapq, random, select, socket, sys, time
    a, b = sys.argv[1], sys.argv[2]
    delay, loss = float(sys.argv[3]) / 1000.0, float(sys.argv[4])
    random.seed(int(sys.argv[5]))
    SOL_PACKET, PACKET_VNET_HDR, ETH_P_ALL = 263, 15, 3
    def bound(name):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        s.bind((name, 0))
        s.setblocking(False)
        return s
    sa, sb = bound(a), bound(b)
    peer = {sa: sb, sb: sa}
    queue, sequence = [], 0
    print("ready", flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        readable, _, _ = select.select([sa, sb], [], [], timeout)
        for s in readable:
            while True:
                try:
                    frame, address = s.recvfrom(70000)
                except OSError:  # EAGAIN, or ENETDOWN while the host is cut off
                    break
                if address[2] == socket.PACKET_OUTGOING or random.random() < loss:
                    continue
                sequence += 1
                heapq.heappush(queue, (time.monotonic() + delay, sequence, peer[s], frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                out.send(frame)
            except OSError:  # the interface is down: the frame is lost, as on a cut link
                pass
    """#
}
