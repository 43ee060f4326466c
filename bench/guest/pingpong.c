// The floor of any user-space NVMe/TCP target at queue depth 1: a request/response loop between two threads
// over the loopback, with the byte counts of a 4 KiB read (a 72-byte CapsuleCmd in, a C2HData PDU with 4 KiB and a
// CapsuleResp out: 4,192 bytes). Both ends block in recv, as zns's receive thread and the host's do, so each round
// trip pays two wake-ups, four system calls and the kernel's loopback TCP, and no protocol work at all.
//
//   pingpong ROUNDS    prints "pingpong: N round trips, X us per round trip"
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum { Request = 72, Response = 4192 };
static int listener, rounds;

static void receive_all(int fd, char *buffer, int length)
{
    for (int got = 0; got < length;) {
        int n = (int)recv(fd, buffer + got, (size_t)(length - got), 0);
        if (n <= 0) { perror("recv"); exit(1); }
        got += n;
    }
}

static void *responder(void *unused)
{
    (void)unused;
    int fd = accept(listener, NULL, NULL), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char request[Request], response[Response];
    memset(response, 1, sizeof response);
    for (int i = 0; i < rounds; i++) {
        receive_all(fd, request, Request);
        if (send(fd, response, Response, 0) != Response) { perror("send"); exit(1); }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    rounds = argc > 1 ? atoi(argv[1]) : 2000;
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t length = sizeof address;
    listener = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(listener, (struct sockaddr *)&address, length) || listen(listener, 1)
        || getsockname(listener, (struct sockaddr *)&address, &length)) { perror("listen"); return 1; }
    pthread_t thread;
    pthread_create(&thread, NULL, responder, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (connect(fd, (struct sockaddr *)&address, length)) { perror("connect"); return 1; }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    static char request[Request], response[Response];
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int i = 0; i < rounds; i++) {
        if (send(fd, request, Request, 0) != Request) { perror("send"); return 1; }
        receive_all(fd, response, Response);
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    pthread_join(thread, NULL);
    double us = ((double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec)) / 1e3;
    printf("pingpong: %d round trips, %.0f us per round trip\n", rounds, us / rounds);
    return 0;
}
