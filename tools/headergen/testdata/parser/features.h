/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/* headergen fixture: every construct the header parser knows. */
#ifndef _FEATURES_H
#define _FEATURES_H

#include <linux/types.h>

#define FT_PLAIN	7		/* a plain constant */
#define FT_HEX		0x1fU
#define FT_SHIFT	(1 << 4)
// a line comment above a define
#define FT_SUM		(FT_PLAIN + FT_HEX * 2)
#define FT_LONG		(FT_SHIFT | \
			 FT_PLAIN)
#define FT_FUNC(x)	((x) << 8)
#define FT_STRING	"not a number"
#define FT_UNKNOWN	SOMETHING_ELSE + 1

/**
 * enum ft_attr - kernel-doc names the members
 * @FT_A_ONE: the first one
 * @FT_A_TWO: the second one,
 *	over two lines
 */
enum ft_attr {
	FT_A_UNSPEC,
	FT_A_ONE,
	FT_A_TWO,
	/* a comment above */
	FT_A_THREE,		/* and one beside */
#define FT_A_OLD FT_A_THREE	/* backwards compatibility */
	FT_A_FIVE = 5,
	FT_A_SIX,		// a line comment
	FT_A_ALIAS = FT_A_FIVE,
#ifdef __KERNEL__
	FT_A_KERNEL,
#else
	FT_A_USER = FT_A_KERNEL,
#endif
	__FT_A_MAX
};
#define FT_A_MAX (__FT_A_MAX - 1)

enum ft_flags {
	FT_F_ONE_BIT = 0,
	FT_F_ONE = (1 << FT_F_ONE_BIT),
	FT_F_TWO_BIT = 1,
	FT_F_TWO = (1 << FT_F_TWO_BIT),
	FT_F_BOTH = (FT_F_ONE | FT_F_TWO),
	FT_F_HIGH = 1 << 31,
	FT_F_LAST = __FT_A_MAX - 1,
	FT_F_OTHER = FT_A_SIX,
	FT_F_NEG = -1,
};

#define FT_A_LATE FT_A_ONE

struct ft_struct {
	enum ft_attr attr;
	union {
		__u32 a;
		__u16 b;
	} u;
};

enum {
	FT_ANON_ZERO,
	FT_ANON_MAX
};

#endif /* _FEATURES_H */
