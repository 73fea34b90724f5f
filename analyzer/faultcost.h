/*
 * What a page fault costs on this machine, per kind: the unit of the storm
 * rule (storms.h), which asks where a program spent a share of its time
 * taking faults.  Measured by the analyzer itself, once per invocation, in
 * its own address space (faultcost.c); docs/analyzer.md ("Storms") says why
 * then and not at another time, and what the figures were here.
 */
#ifndef PFSHIM_FAULTCOST_H
#define PFSHIM_FAULTCOST_H

/* The build machine's figures, quiet (shared/design/KERNEL-FACTS.md): when nothing better is known. */
#define PFS_COST_FIRST_TOUCH_NS 1500.0
#define PFS_COST_COW_NS 2000.0
#define PFS_COST_HUGE_NS 300000.0
/* a huge page's first touch when this machine gives none to measure: this many 4 KiB ones */
#define PFS_COST_HUGE_PER_FIRST 200.0

struct pfs_fault_cost {
	double first_touch_ns;	/* a 4 KiB page's first touch (anonymous, zero-filled) */
	double cow_ns;		/* a copy-on-write fault: a page copied on its first write */
	double huge_ns;		/* a 2 MiB transparent huge page's first touch */
	char source[64];	/* "measured", "PFSHIM_FAULT_COST", "default" */
};

/* Inline: the fuzzing harness links storms.c without the measuring. */
static inline void pfs_faultcost_defaults(struct pfs_fault_cost *c)
{
	*c = (struct pfs_fault_cost){
		.first_touch_ns = PFS_COST_FIRST_TOUCH_NS,
		.cow_ns = PFS_COST_COW_NS,
		.huge_ns = PFS_COST_HUGE_NS,
		.source = "default",
	};
}
/*
 * "first=1.5us,cow=2us,huge=300us" (each optional; units ns, us, ms; a bare
 * number is ns) over *c.  0, or -1 when it does not parse (*c unchanged).
 */
int pfs_faultcost_parse(const char *s, struct pfs_fault_cost *c);
/* Measured here and now (a few thousand faults of the analyzer's own); the defaults where it cannot. */
void pfs_faultcost_measure(struct pfs_fault_cost *c);
/*
 * The cost the storms use: $PFSHIM_FAULT_COST when set (a bad value is said
 * once on stderr and ignored), else measured on first use and kept for the
 * rest of the invocation.
 */
const struct pfs_fault_cost *pfs_faultcost_get(void);

#endif
