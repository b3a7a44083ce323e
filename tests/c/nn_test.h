/* nn_test.h: the C unit-test harness: CHECK / CHECK_NEAR print file:line and count failures;
 * NN_TEST_END returns non-zero when any failed. */
#ifndef NN_TEST_H
#define NN_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "neuronas/nn_cell.h"

static int nn_test_failures;
static int nn_test_checks;

#define CHECK(cond)                                                                          \
  do {                                                                                       \
    nn_test_checks++;                                                                        \
    if (!(cond)) {                                                                           \
      nn_test_failures++;                                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);                \
    }                                                                                        \
  } while (0)

/* |a - b| <= tol (absolute); NaN never passes */
#define CHECK_NEAR(a, b, tol)                                                                \
  do {                                                                                       \
    double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                           \
    nn_test_checks++;                                                                        \
    if (!(fabs(a_ - b_) <= t_)) {                                                            \
      nn_test_failures++;                                                                    \
      fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.17g, %s = %.17g, tol %g\n", __FILE__, \
              __LINE__, #a, a_, #b, b_, t_);                                                 \
    }                                                                                        \
  } while (0)

/* |a - b| <= tol * max(|a|, |b|, 1e-30) */
#define CHECK_REL(a, b, tol)                                                                 \
  do {                                                                                       \
    double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                           \
    double m_ = fmax(fmax(fabs(a_), fabs(b_)), 1e-30);                                       \
    nn_test_checks++;                                                                        \
    if (!(fabs(a_ - b_) <= t_ * m_)) {                                                       \
      nn_test_failures++;                                                                    \
      fprintf(stderr, "%s:%d: CHECK_REL failed: %s = %.17g, %s = %.17g, rel tol %g\n",       \
              __FILE__, __LINE__, #a, a_, #b, b_, t_);                                       \
    }                                                                                        \
  } while (0)

#define NN_TEST_RUN(fn)                                                                      \
  do {                                                                                       \
    int before_ = nn_test_failures;                                                          \
    fn();                                                                                    \
    fprintf(stderr, "%s %s\n", nn_test_failures == before_ ? "ok  " : "FAIL", #fn);          \
  } while (0)

#define NN_TEST_END()                                                                        \
  (fprintf(stderr, "%d checks, %d failed\n", nn_test_checks, nn_test_failures),              \
   nn_test_checks == 0 || nn_test_failures != 0)

/* The cell a text form describes (any form nn_cell_parse reads); a parse error is printed and
 * gives the all-zero cell, which the caller's checks then catch. */
static inline nn_cell nn_test_cell(const char *text) {
  nn_cell c;
  nn_error err;
  memset(&c, 0, sizeof c);
  if (nn_cell_parse(text, NN_CELL_FORM_AUTO, &c, &err) != NN_OK) fprintf(stderr, "cell %s: %s\n", text, err.msg);
  return c;
}

#endif
