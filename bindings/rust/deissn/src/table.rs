use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::{self, NonNull};

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::Method;

/// A tuned plan (`deissn_plan`, docs/tuning.md): how to sample the table's model with exactly
/// `nfe` model evaluations, and what it is worth. Read with [`NormTable::plans`], sampled with
/// [`Preset::Tuned`](crate::Preset::Tuned).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Model evaluations, 1..=64.
    pub nfe: u32,
    /// tau_N > ... > tau_1, `nfe` of them.
    pub taus: Vec<f64>,
    /// Where sampling stops.
    pub tau_end: f64,
    /// What the sampler extrapolates.
    pub method: Method,
    /// 0..=3.
    pub order: u32,
    /// `Method::Data` with the corrector.
    pub corrector: bool,
    /// As in [`SamplerParams`](crate::SamplerParams).
    pub lower_order_final: bool,
    /// `Method::Eps` normalised by the table the plan is in (DEIS-SN).
    pub uses_table: bool,
    /// The held-out samples the errors were measured on.
    pub samples: u32,
    /// Held-out RMSE of the samples against a converged solution of the same ODE.
    pub error: f64,
    /// The low end of its 95 % bootstrap interval.
    pub error_low: f64,
    /// The high end of its 95 % bootstrap interval.
    pub error_high: f64,
    /// The same measure, same samples, for [`Preset::Best`](crate::Preset::Best).
    pub best_error: f64,
    /// [`Method::Learned`]: step i's weights, `nfe` rows (see
    /// [`SamplerParams::weights`](crate::SamplerParams::weights)); empty for the others.
    pub weights: Vec<[f64; 6]>,
}

impl Plan {
    fn from_raw(c: &sys::deissn_plan) -> Plan {
        Plan { nfe: c.nfe, taus: c.taus[..(c.nfe as usize).min(c.taus.len())].to_vec(),
               tau_end: c.tau_end, method: Method::from_raw(c.method).unwrap_or_default(),
               order: c.order, corrector: c.corrector != 0,
               lower_order_final: c.lower_order_final != 0, uses_table: c.uses_table != 0,
               samples: c.samples, error: c.error, error_low: c.error_low,
               error_high: c.error_high, best_error: c.best_error,
               weights: if c.method == sys::deissn_method_DEISSN_METHOD_LEARNED as i32 {
                   c.weights[..(c.nfe as usize).min(c.weights.len())].to_vec()
               } else {
                   Vec::new()
               } }
    }

    fn to_raw(&self, what: &str) -> Result<sys::deissn_plan> {
        // SAFETY: all-zero is a valid value of the struct (numbers only).
        let mut c: sys::deissn_plan = unsafe { std::mem::zeroed() };
        if self.taus.len() != self.nfe as usize || self.taus.len() > c.taus.len() {
            return Err(Error::new(ErrorKind::InvalidArgument, format!(
                "{what}: nfe is {} with {} taus (1..={} of them)", self.nfe, self.taus.len(),
                c.taus.len())));
        }
        let rows = if self.method == Method::Learned { self.taus.len() } else { 0 };
        if self.weights.len() != rows {
            return Err(Error::new(ErrorKind::InvalidArgument, format!(
                "{what}: {} rows of weights for a {:?} plan of nfe {} (nfe rows for \
                 Method::Learned, none for the others)", self.weights.len(), self.method,
                self.nfe)));
        }
        c.weights[..rows].copy_from_slice(&self.weights);
        c.version = sys::DEISSN_PLAN_VERSION;
        c.nfe = self.nfe;
        c.method = self.method.raw();
        c.order = self.order;
        c.corrector = self.corrector.into();
        c.lower_order_final = self.lower_order_final.into();
        c.uses_table = self.uses_table.into();
        c.samples = self.samples;
        c.tau_end = self.tau_end;
        c.taus[..self.taus.len()].copy_from_slice(&self.taus);
        c.error = self.error;
        c.error_low = self.error_low;
        c.error_high = self.error_high;
        c.best_error = self.best_error;
        Ok(c)
    }
}

/// A normalization table r(tau): the mean |eps| of a model at time tau, linear between
/// knots and constant beyond the end knots.
///
/// Immutable, so it may be shared by threads (`Send + Sync`). Samplers keep their table
/// alive inside the library, so a `NormTable` may be dropped before them.
#[derive(Debug)]
pub struct NormTable {
    ptr: NonNull<sys::deissn_normtable>,
}

// SAFETY: the header states tables are immutable after creation and shareable by threads.
unsafe impl Send for NormTable {}
unsafe impl Sync for NormTable {}

/// The `deissn_normtable_params` of `clip` and `metadata` (`None`: the source's; `Some("")`:
/// none), the fingerprint the source's. `what` names the caller in errors. The CString the
/// params point to is returned with them and must outlive their use.
pub(crate) fn table_params(what: &str, clip: u32, metadata: Option<&str>)
                           -> Result<(sys::deissn_normtable_params, Option<CString>)> {
    let meta = metadata.map(CString::new).transpose().map_err(|_| Error::new(
        ErrorKind::InvalidArgument, format!("{what}: metadata contains a NUL byte")))?;
    // SAFETY: all-zero is a valid value; params_init writes the crate's version's fields.
    let mut p: sys::deissn_normtable_params = unsafe { std::mem::zeroed() };
    check(unsafe { sys::deissn_normtable_params_init(&mut p, sys::DEISSN_NORMTABLE_PARAMS_VERSION) })?;
    p.clip = clip;
    p.metadata = meta.as_ref().map_or(ptr::null(), |m| m.as_ptr());
    Ok((p, meta))
}

impl NormTable {
    pub(crate) fn from_raw(rc: i32, out: *mut sys::deissn_normtable) -> Result<NormTable> {
        check(rc)?;
        Ok(NormTable { ptr: NonNull::new(out).expect("libdeissn returned a NULL table") })
    }

    /// Load a table file, its format recognised by its first bytes. `clip` knots nearest
    /// tau = 0 are clipped on top of the file's own clip: the reference implementation's
    /// torch.save files want theirs, as in [`NormTable::from_reference`] (5 for CIFAR-10, 1
    /// for LSUN Church). Errors: `Io` (cannot read), `Format`, `InvalidArgument` (clip too
    /// large).
    pub fn load(path: impl AsRef<Path>, clip: u32) -> Result<NormTable> {
        let path = crate::c_path(path.as_ref())?;
        let (p, _meta) = table_params("NormTable::load", clip, None)?;
        let mut out = ptr::null_mut();
        NormTable::from_raw(unsafe { sys::deissn_normtable_load(&mut out, path.as_ptr(), &p) }, out)
    }

    /// A table from knots: `tau` strictly increasing in [0, 1], `r` finite and > 0.
    pub fn from_knots(tau: &[f64], r: &[f64]) -> Result<NormTable> {
        if tau.len() != r.len() {
            return Err(Error::new(ErrorKind::Size, format!(
                "NormTable::from_knots: {} taus but {} values", tau.len(), r.len())));
        }
        let mut out = ptr::null_mut();
        // SAFETY: both slices hold tau.len() values; the library copies them.
        let rc = unsafe {
            sys::deissn_normtable_create(&mut out, tau.as_ptr(), r.as_ptr(), tau.len(), ptr::null())
        };
        NormTable::from_raw(rc, out)
    }

    /// A table from the reference implementation's `score_abs` and `Ls` arrays:
    /// `r = reverse(score_abs * Ls)`, its first `clip` entries set to `r[clip]`, entry j at
    /// tau = j / (n - 1).
    pub fn from_reference(score_abs: &[f32], ls: &[f32], clip: u32) -> Result<NormTable> {
        if score_abs.len() != ls.len() {
            return Err(Error::new(ErrorKind::Size, format!(
                "NormTable::from_reference: score_abs has {} values, Ls {}", score_abs.len(), ls.len())));
        }
        let (p, _meta) = table_params("NormTable::from_reference", clip, None)?;
        let mut out = ptr::null_mut();
        // SAFETY: both slices hold score_abs.len() values; the library copies them.
        let rc = unsafe {
            sys::deissn_normtable_from_reference(&mut out, score_abs.as_ptr(), ls.as_ptr(),
                                                 score_abs.len(), &p)
        };
        NormTable::from_raw(rc, out)
    }

    pub(crate) fn as_ptr(&self) -> *const sys::deissn_normtable {
        self.ptr.as_ptr()
    }

    /// r(tau).
    pub fn eval(&self, tau: f64) -> f64 {
        unsafe { sys::deissn_normtable_eval(self.as_ptr(), tau) }
    }

    /// The number of knots (at least 2).
    pub fn len(&self) -> usize {
        unsafe { sys::deissn_normtable_size(self.as_ptr()) }
    }

    /// Always false: a table has at least two knots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The knots `(tau, r)` in increasing tau.
    pub fn knots(&self) -> Vec<(f64, f64)> {
        (0..self.len())
            .map(|i| {
                let (mut tau, mut r) = (0.0, 0.0);
                // SAFETY: i < len, and both outputs are valid.
                unsafe { sys::deissn_normtable_knot(self.as_ptr(), i, &mut tau, &mut r) };
                (tau, r)
            })
            .collect()
    }

    /// The fingerprint of the schedule the table was made for; 0 means any schedule.
    pub fn fingerprint(&self) -> u32 {
        unsafe { sys::deissn_normtable_fingerprint(self.as_ptr()) }
    }

    /// The metadata stored with the table ("" when none).
    pub fn metadata(&self) -> String {
        // SAFETY: the library returns a NUL-terminated string that lives as long as the table.
        unsafe { CStr::from_ptr(sys::deissn_normtable_metadata(self.as_ptr())) }
            .to_string_lossy().into_owned()
    }

    /// A copy labelled with `metadata` ("" for none); everything else, the calibration sums
    /// included, is the same (`deissn_normtable_copy`).
    pub fn with_metadata(&self, metadata: &str) -> Result<NormTable> {
        let (p, _meta) = table_params("NormTable::with_metadata", 0, Some(metadata))?;
        let mut out = ptr::null_mut();
        // SAFETY: p and the metadata it points to outlive the call, which copies them.
        let rc = unsafe { sys::deissn_normtable_copy(&mut out, self.as_ptr(), &p) };
        NormTable::from_raw(rc, out)
    }

    /// The tuned plans the table carries ([`crate::tune`], deissn-calibrate), in increasing
    /// nfe; empty when none.
    pub fn plans(&self) -> Vec<Plan> {
        let n = unsafe { sys::deissn_normtable_plan_count(self.as_ptr()) };
        (0..n)
            .map(|i| {
                // SAFETY: all-zero is a valid value; the version says what the library writes.
                let mut c: sys::deissn_plan = unsafe { std::mem::zeroed() };
                c.version = sys::DEISSN_PLAN_VERSION;
                let rc = unsafe { sys::deissn_normtable_plan(self.as_ptr(), i, &mut c) };
                debug_assert_eq!(rc, 0);
                Plan::from_raw(&c)
            })
            .collect()
    }

    /// A copy whose plans are `plans` (distinct nfe, at most 64; empty for none); everything
    /// else is the same (`deissn_normtable_copy`). Errors: `InvalidArgument` (a plan's taus
    /// are not nfe values, two plans for one nfe, times out of order), naming the plan.
    pub fn with_plans(&self, plans: &[Plan]) -> Result<NormTable> {
        let raw = plans.iter().enumerate()
            .map(|(i, q)| q.to_raw(&format!("NormTable::with_plans: plans[{i}]")))
            .collect::<Result<Vec<_>>>()?;
        let (mut p, _meta) = table_params("NormTable::with_plans", 0, None)?;
        // A non-NULL pointer (a dangling one for no plans, never read) with n_plans 0: none.
        p.plans = if raw.is_empty() { ptr::NonNull::dangling().as_ptr() } else { raw.as_ptr() };
        p.n_plans = raw.len();
        let mut out = ptr::null_mut();
        // SAFETY: p and the plans it points to outlive the call, which copies them.
        let rc = unsafe { sys::deissn_normtable_copy(&mut out, self.as_ptr(), &p) };
        NormTable::from_raw(rc, out)
    }

    /// How many knots nearest tau = 0 are clipped (`deissn_normtable_get_info`).
    pub fn clip(&self) -> u32 {
        // SAFETY: all-zero is a valid value; the version says what the library writes.
        let mut info: sys::deissn_normtable_info = unsafe { std::mem::zeroed() };
        info.version = sys::DEISSN_NORMTABLE_INFO_VERSION;
        let rc = unsafe { sys::deissn_normtable_get_info(self.as_ptr(), &mut info) };
        debug_assert_eq!(rc, 0);
        info.clip
    }

    /// Write the table in libdeissn's `.dsn` format (docs/table-format.md), atomically.
    /// Errors: `Io`, naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = crate::c_path(path.as_ref())?;
        check(unsafe { sys::deissn_normtable_save(self.as_ptr(), path.as_ptr()) })?;
        Ok(())
    }

    /// Write the knots (and the calibration sums, when the table has them) as CSV.
    pub fn export_csv(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = crate::c_path(path.as_ref())?;
        check(unsafe { sys::deissn_normtable_export_csv(self.as_ptr(), path.as_ptr()) })?;
        Ok(())
    }
}

impl Drop for NormTable {
    fn drop(&mut self) {
        unsafe { sys::deissn_normtable_free(self.ptr.as_ptr()) }
    }
}
