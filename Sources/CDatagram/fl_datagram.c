#define _GNU_SOURCE
#include "fl_datagram.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fl_dgram_bind_wildcard(const struct sockaddr *address, socklen_t length, int reuse_port) {
    int fd = socket(address->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    int failed = reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0;
    if (!failed) {
        failed = address->sa_family == AF_INET6
            ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one) < 0
            : setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0;
    }
    if (!failed) failed = bind(fd, address, length) < 0;
    if (failed) {
        int saved = errno;
        close(fd);
        return -saved;
    }
    return fd;
}

ssize_t fl_dgram_send_from(int fd, const void *data, size_t length, const struct sockaddr *to, socklen_t to_length,
                           const struct sockaddr *from, unsigned interface_index) {
    struct iovec part = {.iov_base = (void *)data, .iov_len = length};
    union {
        char bytes[CMSG_SPACE(sizeof(struct in6_pktinfo))];
        struct cmsghdr alignment;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr message = {
        .msg_name = (void *)to, .msg_namelen = to_length, .msg_iov = &part, .msg_iovlen = 1, .msg_control = control.bytes};
    struct cmsghdr *header = (struct cmsghdr *)control.bytes;
    if (from->sa_family == AF_INET) {
        struct in_pktinfo info;
        memset(&info, 0, sizeof info);
        // No interface: the route to the client decides it, as for any reply.
        info.ipi_spec_dst = ((const struct sockaddr_in *)from)->sin_addr;
        header->cmsg_level = IPPROTO_IP;
        header->cmsg_type = IP_PKTINFO;
        header->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(header), &info, sizeof info);
        message.msg_controllen = CMSG_SPACE(sizeof info);
    } else if (from->sa_family == AF_INET6) {
        struct in6_pktinfo info;
        memset(&info, 0, sizeof info);
        info.ipi6_addr = ((const struct sockaddr_in6 *)from)->sin6_addr;
        // A link-local address means nothing without its interface.
        if (IN6_IS_ADDR_LINKLOCAL(&info.ipi6_addr)) info.ipi6_ifindex = interface_index;
        header->cmsg_level = IPPROTO_IPV6;
        header->cmsg_type = IPV6_PKTINFO;
        header->cmsg_len = CMSG_LEN(sizeof info);
        memcpy(CMSG_DATA(header), &info, sizeof info);
        message.msg_controllen = CMSG_SPACE(sizeof info);
    } else {
        message.msg_control = NULL;
    }
    ssize_t sent;
    do {
        sent = sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    return sent < 0 ? -errno : sent;
}
