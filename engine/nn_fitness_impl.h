/* nn_fitness_impl.h: engine-private parts of the fitness score shared by nn_fitness.c (the
 * kernel) and nn_fitness_eval.c (scoring nets). */
#ifndef NEURONAS_NN_FITNESS_IMPL_H
#define NEURONAS_NN_FITNESS_IMPL_H

#include "neuronas/nn_fitness.h"
#include "nn_par.h"

/* nn_kernel_add with the call's rows split over par's threads (NULL: the calling thread): the
 * same integer Hamming distances and the same one double addition per entry, so the same bits
 * for any thread count. */
nn_status nn_kernel_add_par(nn_kernel *k, const nn_spike_call *c, nn_par *par, nn_error *err);

#endif
