/* torch_model.cpp - TorchScript models: the only file of libdeissn that includes libtorch.
 *
 * dsn_torch_model_load() wraps a torch.jit.save file as a deissn_model whose ops.sample runs
 * the whole DEIS loop on the model's device: x is copied there once, the state and the eps
 * history stay there, and the result is copied back once. The coefficients come from the C
 * core (dsn_sampler_plan), as do the time and prediction conversions (dsn_model_time,
 * dsn_history_coeffs), so this file holds no maths of its own.
 *
 * Every entry point catches everything: no C++ exception crosses the extern "C" boundary. */
#include <torch/cuda.h>
#include <torch/script.h>

#include <ATen/Parallel.h>

#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "maths/schedule.h"
#include "sampling/sampler.h"
#include "tables/calibrate.h"
#include "backends/model.h"

namespace {

struct TorchModel {
    torch::jit::Module module;
    torch::Device device{torch::kCPU};
    torch::ScalarType dtype = torch::kFloat;
};

/* The useful line of a libtorch message. Exceptions raised inside TorchScript code start with
 * a generic header and a traceback, and end with the actual error ("RuntimeError: ..."): take
 * the last non-empty line of those, the first line of everything else. */
std::string summarize(const char *what) {
    std::string s(what ? what : "");
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) {
        size_t b = line.find_first_not_of(" \t\r");
        if (b != std::string::npos) lines.push_back(line.substr(b));
    }
    if (lines.empty()) return "unknown error";
    bool scripted = lines.front().find("TorchScript interpreter") != std::string::npos;
    return scripted ? lines.back() : lines.front();
}

/* Turn the exception being handled into a status and a message "<fn>: <context>: <what>".
 * Call only from inside a catch block. */
int32_t status_from_exception(const char *fn, const std::string &context) {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return dsn_error(DEISSN_E_NOMEM, "%s: %s: out of memory", fn, context.c_str());
    } catch (const c10::Error &e) {
        std::string msg = summarize(e.what_without_backtrace());
        /* c10 reports failed CPU and CUDA allocations as c10::Error, not std::bad_alloc. */
        bool oom = dynamic_cast<const c10::OutOfMemoryError *>(&e) != nullptr ||
                   msg.find("out of memory") != std::string::npos ||
                   msg.find("can't allocate memory") != std::string::npos;
        return dsn_error(oom ? DEISSN_E_NOMEM : DEISSN_E_MODEL, "%s: %s: %s", fn,
                         context.c_str(), msg.c_str());
    } catch (const std::exception &e) {
        return dsn_error(DEISSN_E_MODEL, "%s: %s: %s", fn, context.c_str(),
                         summarize(e.what()).c_str());
    } catch (...) {
        return dsn_error(DEISSN_E_INTERNAL, "%s: %s: unknown C++ exception", fn,
                         context.c_str());
    }
}

/* "int64" rather than c10's "Long", so that the message speaks the user's (Python) names. */
const char *dtype_name(torch::ScalarType t) {
    switch (t) {
    case torch::kLong: return "int64";
    case torch::kInt: return "int32";
    case torch::kShort: return "int16";
    case torch::kChar: return "int8";
    case torch::kByte: return "uint8";
    case torch::kBool: return "bool";
    default: return c10::toString(t);
    }
}

template <class T> std::string to_text(const T &v) {
    std::ostringstream o;
    o << v;
    return o.str();
}

/* NULL/"cpu", "cuda" or "cuda:N" (N decimal, at most 3 digits). */
int32_t parse_device(const char *fn, const char *s, torch::Device *dev) {
    if (s == nullptr || std::strcmp(s, "cpu") == 0) {
        *dev = torch::Device(torch::kCPU);
        return DEISSN_OK;
    }
    int index = -1;
    if (std::strncmp(s, "cuda", 4) == 0 && s[4] == ':') {
        const char *p = s + 5;
        size_t digits = std::strspn(p, "0123456789");
        if (digits == 0 || digits > 3 || p[digits] != '\0')
            return dsn_error(DEISSN_E_INVALID_ARG,
                             "%s: bad device \"%s\" (expected \"cpu\", \"cuda\" or \"cuda:N\")",
                             fn, s);
        index = std::atoi(p);
    } else if (std::strcmp(s, "cuda") != 0) {
        return dsn_error(DEISSN_E_INVALID_ARG,
                         "%s: bad device \"%s\" (expected \"cpu\", \"cuda\" or \"cuda:N\")", fn, s);
    }
    if (!torch::cuda::is_available())
        return dsn_error(DEISSN_E_UNSUPPORTED,
                         "%s: device \"%s\": CUDA is not available (libtorch built without "
                         "CUDA, or no GPU/driver)", fn, s);
    size_t count = torch::cuda::device_count();
    if (index >= 0 && static_cast<size_t>(index) >= count)
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: device \"%s\": only %zu CUDA device(s)", fn,
                         s, count);
    *dev = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
    return DEISSN_OK;
}

int32_t parse_dtype(const char *fn, int32_t dtype, const torch::Device &dev,
                    torch::ScalarType *out) {
    switch (dtype) {
    case DEISSN_DTYPE_FLOAT32: *out = torch::kFloat; return DEISSN_OK;
    case DEISSN_DTYPE_BFLOAT16: *out = torch::kBFloat16; return DEISSN_OK;
    case DEISSN_DTYPE_FLOAT16:
        /* libtorch's CPU kernels lack float16 for most ops (conv, GroupNorm, ...); failing
         * here is clearer than a failure deep inside the first forward. bfloat16 works. */
        if (dev.is_cpu())
            return dsn_error(DEISSN_E_UNSUPPORTED,
                             "%s: dtype float16 is not supported on the CPU (use bfloat16 or "
                             "float32)", fn);
        *out = torch::kHalf;
        return DEISSN_OK;
    default:
        return dsn_error(DEISSN_E_INVALID_ARG, "%s: unknown dtype %d", fn, (int)dtype);
    }
}

/* Checked before libtorch sees the path, so that a missing or unreadable file is reported as
 * DEISSN_E_IO with the system's reason, not as whatever exception libtorch would throw. */
int32_t check_file(const char *fn, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0)
        return dsn_error(DEISSN_E_IO, "%s: %s: %s", fn, path, std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return dsn_error(DEISSN_E_IO, "%s: %s: not a regular file", fn, path);
    std::FILE *f = std::fopen(path, "rb");
    if (f == nullptr) return dsn_error(DEISSN_E_IO, "%s: %s: %s", fn, path, std::strerror(errno));
    std::fclose(f);
    return DEISSN_OK;
}

/* The libtorch part of loading: fills tm from the file. Throws on libtorch errors. */
int32_t load_module(const char *fn, const char *path, TorchModel *tm) {
    tm->module = torch::jit::load(path, tm->device);
    tm->module.eval();
    /* FLOAT32 keeps the module as saved: converting would also round float64 buffers (e.g.
     * a wrapper's alphas_cumprod) that the author kept in double on purpose. */
    if (tm->dtype != torch::kFloat) tm->module.to(tm->dtype);
    auto forward = tm->module.find_method("forward");
    if (!forward)
        return dsn_error(DEISSN_E_MODEL, "%s: %s: the module has no forward method", fn, path);
    size_t nargs = forward->function().getSchema().arguments().size();
    size_t inputs = nargs > 0 ? nargs - 1 : 0; /* the first argument is self */
    if (inputs != 2)
        return dsn_error(DEISSN_E_MODEL,
                         "%s: %s: forward takes %zu input(s) besides self, expected 2 (x, t)",
                         fn, path, inputs);
    return DEISSN_OK;
}

/* The device-side loop; model_s accumulates the time spent in forward. */
int32_t sample_loop(TorchModel *tm, const deissn_model_params &mp, deissn_sampler *sampler,
                    float *x_host, const int64_t *shape, uint32_t ndim, size_t numel,
                    deissn_sample_options *options, double *model_s) {
    static const char fn[] = "deissn_sample";
    uint32_t n = 0;
    const dsn_step *plan = dsn_sampler_plan(sampler, &n);
    const deissn_schedule *schedule = dsn_sampler_schedule(sampler);
    if (plan == nullptr || schedule == nullptr)
        return dsn_error(DEISSN_E_INTERNAL, "%s: sampler has no plan", fn);

    int32_t rc = deissn_sampler_reset(sampler);
    if (rc != DEISSN_OK) return rc;

    /* libtorch's intra-op thread count is not per model: with the native pool it is
     * process-global, with OpenMP (Debian's build) it belongs to the calling thread. So it is
     * set here, by the thread that samples, and stays in effect for everything that thread
     * (or, with the native pool, the whole process) runs afterwards. */
    if (mp.num_threads > 0 && at::get_num_threads() != mp.num_threads)
        at::set_num_threads(mp.num_threads);

    c10::InferenceMode inference; /* no autograd records, no version counters */
    std::vector<int64_t> sizes(shape, shape + ndim);
    const auto f32 = torch::TensorOptions().dtype(torch::kFloat).device(tm->device);
    /* A copy even on the CPU: the caller's x stays untouched until the loop has succeeded. */
    torch::Tensor host = torch::from_blob(x_host, sizes, torch::kFloat);
    torch::Tensor x = host.to(tm->device, torch::kFloat, /*non_blocking=*/false, /*copy=*/true);
    if (static_cast<size_t>(x.numel()) != numel)
        return dsn_error(DEISSN_E_INTERNAL, "%s: numel %zu does not match the shape", fn, numel);
    constexpr uint32_t kRing = DSN_MAX_DEPTH + 1; /* eps of the last steps: step i in ring[i % kRing] */
    std::array<torch::Tensor, kRing> ring;
    /* Calibration: each step's fixed-point sum, added to the calibrator only at the end. */
    deissn_calibrator *calibrator = options != nullptr ? options->calibrator : nullptr;
    std::vector<int64_t> calib_sums(calibrator != nullptr ? n : 0);

    for (uint32_t i = 0; i < n; i++) {
        const dsn_step &s = plan[i];
        if (s.depth > DSN_MAX_DEPTH || s.depth > i)
            return dsn_error(DEISSN_E_INTERNAL, "%s: step %u has depth %u", fn, i, s.depth);
        double t = dsn_model_time(mp.time_convention, schedule, s.tau_from);
        /* Fresh tensors each step, so that a model that writes into its inputs cannot
         * corrupt the time of later steps. */
        torch::Tensor t_in = torch::full({shape[0]}, t, f32);
        torch::Tensor x_in = tm->dtype == torch::kFloat ? x : x.to(tm->dtype);

        double t0 = dsn_now();
        torch::jit::IValue out;
        try {
            out = tm->module.forward({x_in, t_in});
            if (tm->device.is_cuda()) torch::cuda::synchronize(tm->device.index());
        } catch (...) {
            char ctx[96];
            std::snprintf(ctx, sizeof ctx, "forward failed at step %u (t = %g)", i, t);
            return status_from_exception(fn, ctx);
        }
        *model_s += dsn_now() - t0;

        if (!out.isTensor())
            return dsn_error(DEISSN_E_MODEL, "%s: forward returned %s at step %u, expected a "
                             "Tensor", fn, out.tagKind().c_str(), i);
        torch::Tensor o = out.toTensor();
        if (!at::isFloatingType(o.scalar_type()))
            return dsn_error(DEISSN_E_MODEL, "%s: forward returned dtype %s (shape %s) at "
                             "step %u, expected a floating-point tensor", fn,
                             dtype_name(o.scalar_type()), to_text(o.sizes()).c_str(), i);
        if (o.sizes() != x.sizes())
            return dsn_error(DEISSN_E_MODEL, "%s: forward returned shape %s at step %u, "
                             "expected the input's shape %s", fn, to_text(o.sizes()).c_str(), i,
                             to_text(x.sizes()).c_str());

        /* eps = a x + b out, into this step's ring slot (never aliasing x or out). */
        double a = 0.0, b = 1.0;
        dsn_history_coeffs(&s, mp.prediction, &a, &b);
        torch::Tensor &eps = ring[i % kRing];
        if (!eps.defined()) eps = torch::empty_like(x);
        eps.copy_(o); /* casts to float32 and moves to the device if the model did not */
        if (b != 1.0) eps.mul_(b);
        if (a != 0.0) eps.add_(x, a);
        if (!torch::isfinite(eps).all().item<bool>()) {
            int64_t at = torch::logical_not(torch::isfinite(eps)).flatten().nonzero()[0][0]
                             .item<int64_t>();
            return dsn_error(DEISSN_E_NONFINITE, "%s: model output has NaN or Inf at element "
                             "%lld (step %u, tau %g, t %g)", fn, (long long)at, i, s.tau_from, t);
        }

        if (calibrator != nullptr) {
            /* The host's floor(|eps| * 2^24) summed in int64 (dsn_fixed_sum), on the device:
             * scaling a float32 by 2^24 is exact in float32, and floor and the conversion are
             * exact below 2^63, so the bits are the same. An int64 sum on the device cannot
             * report overflow, so the largest value bounds it first. */
            torch::Tensor mag = eps.abs();
            rc = dsn_fixed_sum_fits(mag.max().item<double>(), numel, i, fn);
            if (rc != DEISSN_OK) return rc;
            calib_sums[i] = (mag * 16777216.0).floor().to(torch::kInt64).sum().item<int64_t>();
        }

        /* x = psi x + sum_j k[j] eps_j, in place: depth + 2 passes, no temporaries. */
        x.mul_(s.psi);
        for (uint32_t j = 0; j <= s.depth; j++) x.add_(ring[(i - j) % kRing], s.k[j]);

        if (options != nullptr && options->progress != nullptr) {
            int urc = options->progress(options->progress_user, i, n);
            if (urc != 0)
                return dsn_error(DEISSN_E_CALLBACK, "%s: progress callback returned %d at "
                                 "step %u", fn, urc, i);
        }
    }
    if (calibrator != nullptr) {
        rc = dsn_calibrator_add_run(calibrator, calib_sums.data(), numel,
                                    static_cast<uint64_t>(shape[0]), fn);
        if (rc != DEISSN_OK) return rc;
    }
    host.copy_(x); /* the one copy back; device-to-host copies synchronise */
    dsn_sampler_mark_done(sampler);
    return DEISSN_OK;
}

int32_t torch_sample(deissn_model *model, deissn_sampler *sampler, float *x,
                     const int64_t *shape, uint32_t ndim, size_t numel,
                     deissn_sample_options *options) {
    double start = dsn_now(), model_s = 0.0;
    int32_t status;
    try {
        status = sample_loop(static_cast<TorchModel *>(model->impl), model->params, sampler, x,
                             shape, ndim, numel, options, &model_s);
    } catch (...) {
        status = status_from_exception("deissn_sample", "libtorch");
    }
    if (options != nullptr) {
        options->model_seconds = model_s;
        options->sampler_seconds = dsn_now() - start - model_s;
    }
    return status;
}

void torch_destroy(void *impl) {
    try {
        delete static_cast<TorchModel *>(impl);
    } catch (...) {
        /* nothing sensible to do; never let it escape */
    }
}

const dsn_model_ops torch_ops = {torch_sample, torch_destroy};

} // namespace

/* The C core defines the "no libtorch" versions of these two when DEISSN_WITH_TORCH is unset. */
extern "C" int32_t deissn_has_torch(void) { return 1; }

extern "C" int32_t dsn_torch_model_load(deissn_model **out, const char *path,
                                        const deissn_model_params *params) {
    static const char fn[] = "deissn_model_load";
    if (out == nullptr) return dsn_error(DEISSN_E_INVALID_ARG, "%s: out is NULL", fn);
    *out = nullptr;
    if (path == nullptr) return dsn_error(DEISSN_E_INVALID_ARG, "%s: path is NULL", fn);

    TorchModel *tm = nullptr;
    deissn_model *model = nullptr;
    int32_t status;
    try {
        tm = new TorchModel;
        /* dsn_model_new validates and copies params (enums, num_threads, device name
         * length) before the expensive load; from here on the model owns tm. */
        status = dsn_model_new(&model, &torch_ops, tm, params, fn);
        if (status != DEISSN_OK) {
            delete tm;
            return status;
        }
        const deissn_model_params &mp = model->params;
        status = parse_device(fn, mp.device, &tm->device);
        if (status == DEISSN_OK) status = parse_dtype(fn, mp.dtype, tm->device, &tm->dtype);
        if (status == DEISSN_OK) status = check_file(fn, path);
        if (status == DEISSN_OK) status = load_module(fn, path, tm);
    } catch (...) {
        status = status_from_exception(fn, path);
        if (model == nullptr) delete tm;
    }
    if (status != DEISSN_OK) {
        deissn_model_free(model); /* destroys tm through torch_destroy */
        return status;
    }
    *out = model;
    return DEISSN_OK;
}
