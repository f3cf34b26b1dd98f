#ifndef FL_DATAGRAM_H
#define FL_DATAGRAM_H

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/// A UDP socket bound to a wildcard address (0.0.0.0 or ::) that learns each datagram's
/// destination address (IP_PKTINFO, IPV6_RECVPKTINFO): non-blocking, close-on-exec, with
/// SO_REUSEPORT when `reuse_port`. Returns the descriptor, or -errno.
int fl_dgram_bind_wildcard(const struct sockaddr *address, socklen_t length, int reuse_port);

/// Sends one datagram to `to` with `from` as its source address (IP_PKTINFO's ipi_spec_dst,
/// IPV6_PKTINFO's ipi6_addr, the latter with `interface_index` when `from` is link-local), so
/// that a reply leaves from the address its query was sent to. Never blocks. Returns the bytes
/// sent, or -errno. Why C: struct in_pktinfo needs _GNU_SOURCE, which Swift's Glibc import does
/// not define, and NIO sets no source address on what it sends.
ssize_t fl_dgram_send_from(int fd, const void *data, size_t length, const struct sockaddr *to, socklen_t to_length,
                           const struct sockaddr *from, unsigned interface_index);

#endif
