/* minimal.c - the smallest useful libdeissn program: DEIS-SN-ready stepping with your own
 * model. Build: cc minimal.c $(pkg-config --cflags --libs deissn) -lm */
#include <deissn.h>
#include <math.h>
#include <stdio.h>

int main(void) {
    deissn_schedule_params sp = DEISSN_SCHEDULE_PARAMS_INIT;     /* linear noise, T = 1000 */
    deissn_sampler_params pp = DEISSN_SAMPLER_PARAMS_INIT;
    deissn_schedule *schedule;
    deissn_sampler *sampler;
    if (deissn_preset_params(DEISSN_PRESET_BEST, 10, NULL, &sp, &pp, NULL) != DEISSN_OK || /* 10 NFE */
        deissn_schedule_create(&schedule, &sp) != DEISSN_OK ||
        deissn_sampler_create(&sampler, schedule, NULL, &pp) != DEISSN_OK) {
        fprintf(stderr, "deissn: %s\n", deissn_last_error());
        return 1;
    }
    float x[4], eps[4];
    deissn_fill_noise(42, 0, 1, 4, x);                            /* seed 42, sample 0 */
    deissn_step_info at = DEISSN_STEP_INFO_INIT;
    int32_t rc = deissn_sampler_next(sampler, &at);
    while (rc == DEISSN_OK) {                                     /* your network goes here: */
        for (int i = 0; i < 4; i++)                               /* data ~ N(0, 0.5^2) */
            eps[i] = at.sigma * x[i] / (at.alpha * at.alpha * 0.25f + at.sigma * at.sigma);
        rc = deissn_step(sampler, x, eps, 4, &at);
    }
    printf("%s: x = %.4f %.4f %.4f %.4f\n", rc == DEISSN_DONE ? "done" : deissn_last_error(),
           x[0], x[1], x[2], x[3]);
    deissn_sampler_free(sampler);
    deissn_schedule_free(schedule);
    return rc == DEISSN_DONE ? 0 : 1;
}
