/* torch_backend.cpp - the TorchScript backend plug-in, libdeissn-torch.so: the only code of
 * libdeissn that includes libtorch.
 *
 * It implements lib/backends/backend.h: load a torch.jit.save file, evaluate it, and run the
 * sampling loop's few vector operations on the model's device. The loop itself (the order of
 * the steps, checks, calibration, progress, timing) is lib/sampling/loop.c, shared with every
 * other backend; the coefficients come from the plan. The step update runs in float64 and
 * rounds once, as the C kernel does, so both backends give the same samples.
 *
 * Buffers are Buffer objects (a 1-D float32 tensor of n values on the model's device) behind
 * void pointers. Every entry point catches everything: no C++ exception crosses the C
 * interface. The library's error function comes in dsn_host; the plug-in does not link
 * libdeissn. */
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <ATen/Parallel.h>

#include <sys/stat.h>

#include <cerrno>
#include <cfloat>
#include <cstdio>
#include <cstring>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "backends/backend.h"

namespace {

const dsn_host *g_host = nullptr;

#define FAIL(status, ...) g_host->error((status), __VA_ARGS__)

const char kBuiltWith[] = "libtorch " TORCH_VERSION;

struct TorchModel {
    torch::jit::Module module;
    torch::Device device{torch::kCPU};
    torch::ScalarType dtype = torch::kFloat;
    int num_threads = 0;
};

/* A state buffer. `scratch` and `coef` are only for the buffer that the step update writes
 * (x): the float64 terms of the update, and its coefficients as 0-dim float64 CPU tensors
 * (a, b, cx, co, k1..k4; a Scalar argument would be wrapped in a new tensor at every call),
 * kept from one step to the next so that a sampling run allocates them once, at its first
 * step. A buffer belongs to one sampling call (lib/sampling/loop.c), so they are used by one
 * thread at a time. */
struct Buffer {
    torch::Tensor data;
    torch::Tensor scratch;
    torch::Tensor coef[4 + DSN_MAX_DEPTH];
};

/* The first n values of a buffer (operations may use less than was allocated). */
torch::Tensor T(const void *buf, size_t n) {
    return static_cast<const Buffer *>(buf)->data.narrow(0, 0, static_cast<int64_t>(n));
}

/* The lines of a libtorch message worth showing. Exceptions raised inside TorchScript code
 * start with a generic header and a traceback and end with the actual error ("RuntimeError:
 * ..."): take that last line. Others: the first line, plus a following hint line if there
 * is one (libtorch puts the cause and the fix on separate lines, e.g. for a file saved by a
 * newer torch). */
std::string summarize(const char *what) {
    std::string s(what ? what : "");
    std::vector<std::string> lines;
    std::istringstream in(s);
    for (std::string line; std::getline(in, line);) {
        size_t b = line.find_first_not_of(" \t\r");
        if (b != std::string::npos) lines.push_back(line.substr(b));
    }
    if (lines.empty()) return "unknown error";
    if (lines.front().find("TorchScript interpreter") != std::string::npos) return lines.back();
    std::string out = lines.front();
    if (lines.size() > 1 && lines[1].rfind("Exception raised from", 0) != 0) out += " " + lines[1];
    return out;
}

/* Turn the exception being handled into a status and a message "<fn>: <context>: <what>".
 * Call only from inside a catch block. */
int32_t status_from_exception(const char *fn, const std::string &context) {
    try {
        throw;
    } catch (const std::bad_alloc &) {
        return FAIL(DEISSN_E_NOMEM, "%s: %s: out of memory", fn, context.c_str());
    } catch (const c10::Error &e) {
        std::string msg = summarize(e.what_without_backtrace());
        /* c10 reports failed CPU and CUDA allocations as c10::Error, not std::bad_alloc. */
        bool oom = dynamic_cast<const c10::OutOfMemoryError *>(&e) != nullptr ||
                   msg.find("out of memory") != std::string::npos ||
                   msg.find("can't allocate memory") != std::string::npos;
        return FAIL(oom ? DEISSN_E_NOMEM : DEISSN_E_MODEL, "%s: %s: %s", fn, context.c_str(),
                    msg.c_str());
    } catch (const std::exception &e) {
        return FAIL(DEISSN_E_MODEL, "%s: %s: %s", fn, context.c_str(), summarize(e.what()).c_str());
    } catch (...) {
        return FAIL(DEISSN_E_INTERNAL, "%s: %s: unknown C++ exception", fn, context.c_str());
    }
}

/* Run body; any exception becomes a status naming `what`. */
template <class F> int32_t guarded(const char *what, F &&body) {
    try {
        return body();
    } catch (...) {
        return status_from_exception("deissn_sample", what);
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
            return FAIL(DEISSN_E_INVALID_ARG,
                        "%s: bad device \"%s\" (expected \"cpu\", \"cuda\" or \"cuda:N\")", fn, s);
        index = std::atoi(p);
    } else if (std::strcmp(s, "cuda") != 0) {
        return FAIL(DEISSN_E_INVALID_ARG,
                    "%s: bad device \"%s\" (expected \"cpu\", \"cuda\" or \"cuda:N\")", fn, s);
    }
    if (!torch::cuda::is_available())
        return FAIL(DEISSN_E_UNSUPPORTED,
                    "%s: device \"%s\": CUDA is not available (%s built without CUDA, or no "
                    "GPU/driver)", fn, s, kBuiltWith);
    size_t count = torch::cuda::device_count();
    if (index >= 0 && static_cast<size_t>(index) >= count)
        return FAIL(DEISSN_E_INVALID_ARG, "%s: device \"%s\": only %zu CUDA device(s)", fn, s,
                    count);
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
            return FAIL(DEISSN_E_UNSUPPORTED,
                        "%s: dtype float16 is not supported on the CPU (use bfloat16 or float32)",
                        fn);
        *out = torch::kHalf;
        return DEISSN_OK;
    default: return FAIL(DEISSN_E_INVALID_ARG, "%s: unknown dtype %d", fn, (int)dtype);
    }
}

/* Checked before libtorch sees the path, so that a missing or unreadable file is reported as
 * DEISSN_E_IO with the system's reason, not as whatever exception libtorch would throw. */
int32_t check_file(const char *fn, const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) return FAIL(DEISSN_E_IO, "%s: %s: %s", fn, path, std::strerror(errno));
    if (!S_ISREG(st.st_mode)) return FAIL(DEISSN_E_IO, "%s: %s: not a regular file", fn, path);
    std::FILE *f = std::fopen(path, "rb");
    if (f == nullptr) return FAIL(DEISSN_E_IO, "%s: %s: %s", fn, path, std::strerror(errno));
    std::fclose(f);
    return DEISSN_OK;
}

/* forward(self, x, t, ...): x and t, and any further argument must have a default (a
 * conditioning input the loop does not pass yet). */
int32_t check_forward(const char *fn, const char *path, const torch::jit::Module &module) {
    auto forward = module.find_method("forward");
    if (!forward) return FAIL(DEISSN_E_MODEL, "%s: %s: the module has no forward method", fn, path);
    const auto &args = forward->function().getSchema().arguments();
    size_t inputs = args.empty() ? 0 : args.size() - 1; /* the first argument is self */
    if (inputs < 2)
        return FAIL(DEISSN_E_MODEL,
                    "%s: %s: forward takes %zu input(s) besides self, expected (x, t)", fn, path,
                    inputs);
    for (size_t i = 3; i < args.size(); i++)
        if (!args[i].default_value())
            return FAIL(DEISSN_E_MODEL,
                        "%s: %s: forward's input %zu ('%s') has no default; libdeissn passes "
                        "only (x, t)", fn, path, i, args[i].name().c_str());
    return DEISSN_OK;
}

int32_t torch_load(void **impl, const char *path, const deissn_model_params *params) {
    static const char fn[] = "deissn_model_load";
    *impl = nullptr;
    TorchModel *tm = nullptr;
    int32_t status;
    try {
        tm = new TorchModel;
        tm->num_threads = params->num_threads;
        status = parse_device(fn, params->device, &tm->device);
        if (status == DEISSN_OK) status = parse_dtype(fn, params->dtype, tm->device, &tm->dtype);
        if (status == DEISSN_OK) status = check_file(fn, path);
        if (status == DEISSN_OK) {
            try {
                tm->module = torch::jit::load(path, tm->device);
            } catch (...) {
                std::string ctx = std::string(path) + " (this plug-in uses " + kBuiltWith + ")";
                status = status_from_exception(fn, ctx);
            }
        }
        if (status == DEISSN_OK) {
            tm->module.eval();
            /* FLOAT32 keeps the module as saved: converting would also round float64 buffers
             * (e.g. a wrapper's alphas_cumprod) that the author kept in double on purpose. */
            if (tm->dtype != torch::kFloat) tm->module.to(tm->dtype);
            status = check_forward(fn, path, tm->module);
        }
    } catch (...) {
        status = status_from_exception(fn, path);
    }
    if (status != DEISSN_OK) {
        delete tm;
        return status;
    }
    *impl = tm;
    return DEISSN_OK;
}

void torch_destroy(void *impl) {
    try {
        delete static_cast<TorchModel *>(impl);
    } catch (...) {
        /* nothing sensible to do; never let it escape */
    }
}

int32_t torch_alloc(void *impl, size_t n, void **buf) {
    auto *tm = static_cast<TorchModel *>(impl);
    *buf = nullptr;
    return guarded("allocating a state buffer", [&] {
        auto t = torch::empty({static_cast<int64_t>(n)},
                              torch::TensorOptions().dtype(torch::kFloat).device(tm->device));
        *buf = new Buffer{std::move(t), torch::Tensor(), {}};
        return DEISSN_OK;
    });
}

void torch_release(void *, void *buf) {
    try {
        delete static_cast<Buffer *>(buf);
    } catch (...) {
    }
}

int32_t torch_upload(void *, void *dst, const float *src, size_t n) {
    return guarded("copying x to the device", [&] {
        T(dst, n).copy_(torch::from_blob(const_cast<float *>(src), {static_cast<int64_t>(n)},
                                         torch::kFloat));
        return DEISSN_OK;
    });
}

/* All of dst or nothing: the device-to-host copy goes to a tensor of its own first. */
int32_t torch_download(void *, float *dst, const void *src, size_t n) {
    return guarded("copying the samples back", [&] {
        torch::Tensor host = T(src, n).to(torch::kCPU).contiguous();
        std::memcpy(dst, host.data_ptr<float>(), n * sizeof(float));
        return DEISSN_OK;
    });
}

int32_t torch_copy(void *, void *dst, const void *src, size_t n) {
    return guarded("copying the state", [&] {
        T(dst, n).copy_(T(src, n));
        return DEISSN_OK;
    });
}

int32_t torch_forward(void *impl, const dsn_forward *f) {
    static const char fn[] = "deissn_sample";
    auto *tm = static_cast<TorchModel *>(impl);
    try {
        /* libtorch's intra-op thread count is not per model (deissn.h, num_threads): set by
         * the thread that samples, only when asked. */
        if (tm->num_threads > 0 && at::get_num_threads() != tm->num_threads)
            at::set_num_threads(tm->num_threads);
        c10::InferenceMode inference; /* no autograd records, no version counters */
        std::vector<int64_t> sizes(f->shape, f->shape + f->ndim);
        torch::Tensor x_in = T(f->x, f->numel).view(sizes);
        if (tm->dtype != torch::kFloat) x_in = x_in.to(tm->dtype);
        /* A fresh time tensor each step: a model that writes into its inputs cannot change
         * later steps' times. */
        torch::Tensor t_in = torch::full(
            {f->shape[0]}, f->t, torch::TensorOptions().dtype(torch::kFloat).device(tm->device));
        torch::jit::IValue out;
        try {
            out = tm->module.forward({x_in, t_in});
            if (tm->device.is_cuda()) torch::cuda::synchronize(tm->device.index());
        } catch (...) {
            char ctx[96];
            std::snprintf(ctx, sizeof ctx, "forward failed at step %u (t = %g)", f->step, f->t);
            return status_from_exception(fn, ctx);
        }
        if (!out.isTensor())
            return FAIL(DEISSN_E_MODEL, "%s: forward returned %s at step %u, expected a Tensor", fn,
                        out.tagKind().c_str(), f->step);
        torch::Tensor o = out.toTensor();
        if (!at::isFloatingType(o.scalar_type()))
            return FAIL(DEISSN_E_MODEL, "%s: forward returned dtype %s (shape %s) at step %u, "
                        "expected a floating-point tensor", fn, dtype_name(o.scalar_type()),
                        to_text(o.sizes()).c_str(), f->step);
        if (o.sizes() != x_in.sizes())
            return FAIL(DEISSN_E_MODEL, "%s: forward returned shape %s at step %u, expected the "
                        "input's shape %s", fn, to_text(o.sizes()).c_str(), f->step,
                        to_text(x_in.sizes()).c_str());
        if (o.scalar_type() == torch::kDouble) {
            /* Finite in float64 but beyond float32: say so, rather than let the conversion
             * report an Inf the model never produced. */
            torch::Tensor big = torch::isfinite(o).logical_and(o.abs() > FLT_MAX).flatten();
            if (big.any().item<bool>()) {
                int64_t at = big.nonzero()[0][0].item<int64_t>();
                return FAIL(DEISSN_E_NONFINITE, "%s: the model output %g at element %lld (step "
                            "%u) overflows float32", fn, o.flatten()[at].item<double>(),
                            (long long)at, f->step);
            }
        }
        T(f->out, f->numel).copy_(o.reshape({-1})); /* to float32, and to the device */
        return DEISSN_OK;
    } catch (...) {
        return status_from_exception(fn, "libtorch");
    }
}

int32_t torch_update(void *, const dsn_update *u, size_t n) {
    return guarded("the step update", [&] {
        /* The C kernel's arithmetic (lib/sampling/kernel.c): every term in float64, in the
         * same order, one rounding to float32 at the end. The float64 values live in x's
         * scratch, [x | out | term | e], written in place: no allocation after the first
         * step of a run (the same kernels as out-of-place operators, so the same bits). */
        auto *xb = static_cast<Buffer *>(u->x);
        const int64_t m = static_cast<int64_t>(n);
        if (!xb->scratch.defined() || xb->scratch.numel() < 4 * m)
            xb->scratch = torch::empty({4 * m}, xb->data.options().dtype(torch::kDouble));
        if (!xb->coef[0].defined())
            for (torch::Tensor &c : xb->coef) c = torch::empty({}, torch::kDouble);
        /* The coefficient tensor `slot`, set to v. CUDA kernels read a CPU scalar's value
         * when they are launched, so the next step may overwrite it. */
        auto k = [xb](int slot, double v) -> const torch::Tensor & {
            *xb->coef[slot].data_ptr<double>() = v;
            return xb->coef[slot];
        };
        torch::Tensor x = xb->scratch.narrow(0, 0, m), o = xb->scratch.narrow(0, m, m);
        torch::Tensor term = xb->scratch.narrow(0, 2 * m, m), e = xb->scratch.narrow(0, 3 * m, m);
        x.copy_(T(u->x, n));
        o.copy_(T(u->out, n));
        bool direct = u->a == 0.0 && u->b == 1.0;
        if (!direct && (u->save != nullptr || u->ecopy != nullptr)) {
            e.copy_(x).mul_(k(0, u->a));             /* e = a x + b out */
            e.add_(term.copy_(o).mul_(k(1, u->b)));
        }
        x.mul_(k(2, u->cx)).add_(o.mul_(k(3, u->co))); /* x = cx x + co out + k1 h1 + ... */
        for (uint32_t j = 1; j <= u->depth; j++)
            x.add_(term.copy_(T(u->hist[j - 1], n)).mul_(k(3 + (int)j, u->k[j])));
        T(u->x, n).copy_(x);
        const torch::Tensor src = direct ? T(u->out, n) : e;
        if (u->save != nullptr) T(u->save, n).copy_(src);
        if (u->ecopy != nullptr) T(u->ecopy, n).copy_(src);
        return DEISSN_OK;
    });
}

int32_t torch_first_nonfinite(void *, const void *buf, size_t n, size_t *index, float *value) {
    return guarded("the finiteness check", [&] {
        torch::Tensor t = T(buf, n);
        torch::Tensor bad = torch::logical_not(torch::isfinite(t));
        *index = n;
        if (bad.any().item<bool>()) {
            int64_t at = bad.nonzero()[0][0].item<int64_t>();
            *index = static_cast<size_t>(at);
            *value = t[at].item<float>();
        }
        return DEISSN_OK;
    });
}

int32_t torch_max_abs(void *, const void *buf, size_t n, double *max_abs) {
    return guarded("the calibration", [&] {
        *max_abs = T(buf, n).abs().max().item<double>();
        return DEISSN_OK;
    });
}

int32_t torch_fixed_sum(void *, const void *buf, size_t n, double scale, int64_t *sum) {
    return guarded("the calibration", [&] {
        /* floor(|e| * scale) is exact in float64 for float32 e and scale = 2^24, and the
         * conversion is exact below 2^63 (the loop checked the bound). */
        *sum = (T(buf, n).to(torch::kDouble).abs() * scale).floor().to(torch::kLong).sum()
                   .item<int64_t>();
        return DEISSN_OK;
    });
}

const dsn_backend torch_backend = {
    DSN_BACKEND_ABI, "torch",        kBuiltWith,    torch_load,
    torch_destroy,   torch_alloc,    torch_release, torch_upload,
    torch_download,  torch_copy,     torch_forward, torch_update,
    torch_first_nonfinite, torch_max_abs, torch_fixed_sum,
};

} // namespace

extern "C" __attribute__((visibility("default"))) int32_t
deissn_backend_entry(uint32_t abi, const dsn_host *host, const dsn_backend **out) {
    if (host == nullptr || out == nullptr) return DEISSN_E_INVALID_ARG;
    if (abi != DSN_BACKEND_ABI || host->abi != DSN_BACKEND_ABI)
        return host->error(DEISSN_E_UNSUPPORTED,
                           "libdeissn-torch: built for backend interface %d, the library "
                           "offers %u: rebuild the plug-in with the library", DSN_BACKEND_ABI,
                           abi);
    g_host = host;
    *out = &torch_backend;
    return DEISSN_OK;
}
