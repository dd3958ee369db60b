/*
 * consumer: a minimal libnetfilter_queue consumer, the C side of the
 * nfqueue benchmark and differential test of bench/nfqueue.
 *
 *   consumer FIRST NQUEUES COUNT [-v] [-b BATCH]
 *
 * binds queues FIRST to FIRST+NQUEUES-1, one socket and one thread each,
 * with a queue length of 8192 and a receive buffer of 8 MiB, copies whole
 * packets and accepts each one, until COUNT packets were
 * accepted in all; then it prints "done N" and exits. It prints "ready"
 * once every queue is bound. With -v it prints one line per packet with
 * what libnetfilter_queue decodes. With -b it accepts with a batch verdict
 * (nfq_set_verdict_batch) every BATCH packets instead of one by one.
 * SIGTERM makes it print "done N" with the count so far and exit.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libnetfilter_queue/libnetfilter_queue.h>
#include <libnfnetlink/libnfnetlink.h>

static long want;
static int verbose, batch;
static atomic_long total;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

struct worker {
	int num;
	long pending; /* packets since the last batch verdict */
	struct nfq_handle *h;
};

static void finish(void)
{
	pthread_mutex_lock(&out_lock);
	printf("done %ld\n", atomic_load(&total));
	fflush(stdout);
	_exit(0);
}

static void on_term(int sig)
{
	(void)sig;
	finish();
}

static int cb(struct nfq_q_handle *qh, struct nfgenmsg *nfmsg, struct nfq_data *nfa, void *data)
{
	struct worker *w = data;
	struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
	uint32_t id = ph ? ntohl(ph->packet_id) : 0;
	(void)nfmsg;
	if (verbose) {
		unsigned char *payload;
		uint32_t uid = 0, gid = 0;
		int has_uid = nfq_get_uid(nfa, &uid);
		int has_gid = nfq_get_gid(nfa, &gid);
		int len = nfq_get_payload(nfa, &payload);
		pthread_mutex_lock(&out_lock);
		printf("queue=%d id=%u hook=%u proto=0x%04x mark=0x%x indev=%u outdev=%u uid=%s%u gid=%s%u len=%d\n",
		       w->num, id, ph ? ph->hook : 0, ph ? ntohs(ph->hw_protocol) : 0,
		       nfq_get_nfmark(nfa), nfq_get_indev(nfa), nfq_get_outdev(nfa),
		       has_uid ? "" : "-", uid, has_gid ? "" : "-", gid, len);
		fflush(stdout);
		pthread_mutex_unlock(&out_lock);
	}
	if (batch > 0) {
		if (++w->pending >= batch) {
			nfq_set_verdict_batch(qh, id, NF_ACCEPT);
			w->pending = 0;
		}
	} else {
		nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
	}
	if (atomic_fetch_add(&total, 1) + 1 >= want)
		finish();
	return 0;
}

static struct nfq_handle *bind_queue(struct worker *w, struct nfq_q_handle **qh)
{
	struct nfq_handle *h = nfq_open();
	if (!h) {
		perror("nfq_open");
		exit(1);
	}
	*qh = nfq_create_queue(h, w->num, cb, w);
	if (!*qh) {
		fprintf(stderr, "nfq_create_queue %d: %s\n", w->num, strerror(errno));
		exit(1);
	}
	if (nfq_set_mode(*qh, NFQNL_COPY_PACKET, 0xffff) < 0) {
		perror("nfq_set_mode");
		exit(1);
	}
	/* As the Go side: room for every packet the senders can have queued,
	 * and a receive buffer for them. */
	if (nfq_set_queue_maxlen(*qh, 8192) < 0) {
		perror("nfq_set_queue_maxlen");
		exit(1);
	}
	nfnl_rcvbufsiz(nfq_nfnlh(h), 8 << 20);
	if (verbose && nfq_set_queue_flags(*qh, NFQA_CFG_F_UID_GID, NFQA_CFG_F_UID_GID) < 0) {
		perror("nfq_set_queue_flags");
		exit(1);
	}
	return h;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	struct nfq_handle *h = w->h;
	char buf[65536 + 4096];
	int fd = nfq_fd(h);
	for (;;) {
		int n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			if (errno == ENOBUFS)
				continue;
			perror("recv");
			exit(1);
		}
		nfq_handle_packet(h, buf, n);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int first, n, i;
	if (argc < 4) {
		fprintf(stderr, "usage: consumer FIRST NQUEUES COUNT [-v] [-b BATCH]\n");
		return 2;
	}
	first = atoi(argv[1]);
	n = atoi(argv[2]);
	want = atol(argv[3]);
	for (i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "-v"))
			verbose = 1;
		else if (!strcmp(argv[i], "-b") && i + 1 < argc)
			batch = atoi(argv[++i]);
	}
	signal(SIGTERM, on_term);
	struct worker *ws = calloc(n, sizeof(*ws));
	pthread_t *ts = calloc(n, sizeof(*ts));
	for (i = 0; i < n; i++) {
		struct nfq_q_handle *qh;
		ws[i].num = first + i;
		ws[i].h = bind_queue(&ws[i], &qh);
	}
	printf("ready\n");
	fflush(stdout);
	for (i = 0; i < n; i++)
		pthread_create(&ts[i], NULL, run, &ws[i]);
	for (i = 0; i < n; i++)
		pthread_join(ts[i], NULL);
	return 0;
}
