/*
 * Exact mode in the analyzer: FAULTS records decoded into fault events,
 * CARVE and UREG records kept, then each event charged to the allocation
 * that owned its page at that moment (after the block replay and the
 * process tree are known): per-site first_touch_faults / cow_faults and one
 * struct pfs_touch_ev per fault for the rates over time.
 */
#ifndef PFSHIM_FAULTS_H
#define PFSHIM_FAULTS_H

#include "logread.h"
#include "model.h"

/* 0, -ENOMEM, or -EINVAL with *why: events that do not decode (the record is counted as bad). */
int pfs_faults_decode(struct pfs_proc *p, const struct pfs_rec *rec, const char **why);
int pfs_faults_ureg(struct pfs_proc *p, const struct pfs_rec *rec);
int pfs_faults_carve(struct pfs_proc *p, const struct pfs_rec *rec);
/* Charges p's fault events to sites; warnings (THP altered, unobservable memory) go to w.  0 or -ENOMEM. */
int pfs_faults_attribute(struct pfs_proc *p, struct pfs_an_warnings *w);

#endif
