/*
 * sender: the traffic of the nfqueue benchmark of bench/nfqueue, sent from
 * a process of its own so that it shares no runtime with the consumer
 * being measured.
 *
 *   sender COUNT SIZE SENDERS PORT
 *
 * sends COUNT UDP datagrams of SIZE bytes to 127.0.0.1:PORT, round robin
 * over SENDERS sockets bound to 127.0.0.2 and up, each datagram starting
 * with its number in network byte order. Sends block while the queued
 * packets fill a socket's send buffer, so the rate follows the consumer's.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: sender COUNT SIZE SENDERS PORT\n");
		return 2;
	}
	long count = atol(argv[1]);
	int size = atoi(argv[2]), senders = atoi(argv[3]), port = atoi(argv[4]);
	if (count < 0 || size < 4 || size > 65507 || senders < 1 || senders > 200 || port < 1 || port > 65535) {
		fprintf(stderr, "sender: bad arguments\n");
		return 2;
	}
	int fds[200];
	for (int i = 0; i < senders; i++) {
		struct sockaddr_in a = {.sin_family = AF_INET};
		fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
		if (fds[i] < 0) {
			perror("sender: socket");
			return 1;
		}
		a.sin_addr.s_addr = htonl(0x7f000002 + i);
		if (bind(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("sender: bind");
			return 1;
		}
		a.sin_addr.s_addr = htonl(0x7f000001);
		a.sin_port = htons(port);
		if (connect(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0) {
			perror("sender: connect");
			return 1;
		}
	}
	char *buf = calloc(1, size);
	if (!buf) {
		perror("sender: calloc");
		return 1;
	}
	for (long i = 0; i < count; i++) {
		uint32_t n = htonl(i);
		memcpy(buf, &n, 4);
		if (write(fds[i % senders], buf, size) != size) {
			perror("sender: write");
			return 1;
		}
	}
	return 0;
}
