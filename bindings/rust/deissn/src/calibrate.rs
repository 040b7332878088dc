use std::ptr::{self, NonNull};

use deissn_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::table::table_params;
use crate::{NormTable, Schedule};

/// Measures a model's normalization table r(tau): per step of a (typically 1000-step,
/// trailing) sampling run, the sum of |eps| over all elements of all samples, in exact
/// integers (fixed point, 24 fractional bits), so calibrators merge bit for bit in any order.
///
/// Feed it with [`Sampler::sample_calibrated`](crate::Sampler::sample_calibrated) or
/// [`Calibrator::add`]; combine processes with [`Calibrator::merge`] or
/// [`Calibrator::sums`] / [`Calibrator::add_sums`]; make the table with
/// [`Calibrator::finish`]. `Send` but not `Sync`: one thread at a time, as the header says
/// (mutation takes `&mut self`, and no `&Calibrator` reaches another thread):
/// ```compile_fail,E0277
/// fn shared<T: Sync>() {}
/// shared::<deissn::Calibrator>();
/// ```
/// ```
/// fn send<T: Send>() {}
/// send::<deissn::Calibrator>();
/// ```
#[derive(Debug)]
pub struct Calibrator {
    ptr: NonNull<sys::deissn_calibrator>,
}

// SAFETY: a calibrator may move between threads; `&mut self` on every mutating method keeps
// it to one thread at a time.
unsafe impl Send for Calibrator {}

/// The raw state of a [`Calibrator`]: per step, the fixed-point sum and the element count, and
/// the number of samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalibrationSums {
    /// Per step (sampling order): the sum of floor(|eps| * 2^24).
    pub sums: Vec<i64>,
    /// Per step: how many values were added.
    pub counts: Vec<u64>,
    /// How many samples the sums are made from.
    pub samples: u64,
}

impl Calibrator {
    fn wrap(rc: i32, out: *mut sys::deissn_calibrator) -> Result<Calibrator> {
        check(rc)?;
        Ok(Calibrator { ptr: NonNull::new(out).expect("libdeissn returned a NULL calibrator") })
    }

    /// An empty calibrator for runs over `schedule`'s steps (at least 2).
    pub fn new(schedule: &Schedule) -> Result<Calibrator> {
        let mut out = ptr::null_mut();
        Calibrator::wrap(unsafe { sys::deissn_calibrator_create(&mut out, schedule.as_ptr()) }, out)
    }

    /// A calibrator holding the sums `table` was made from, to merge more into it. Errors:
    /// `InvalidArgument` when the table has no sums (e.g. one from knots).
    pub fn from_table(table: &NormTable) -> Result<Calibrator> {
        let mut out = ptr::null_mut();
        Calibrator::wrap(unsafe { sys::deissn_calibrator_from_table(&mut out, table.as_ptr()) }, out)
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut sys::deissn_calibrator {
        self.ptr.as_ptr()
    }

    /// N, the number of steps.
    pub fn steps(&self) -> u32 {
        unsafe { sys::deissn_calibrator_steps(self.ptr.as_ptr()) }
    }

    /// Add the eps a run used at `step`; `samples` counts the batch once (pass it with one
    /// step, 0 with the others). Errors: `InvalidArgument` (step >= N), `NonFinite`, `Size`;
    /// the calibrator is then unchanged.
    pub fn add(&mut self, step: u32, eps: &[f32], samples: u64) -> Result<()> {
        // SAFETY: eps holds eps.len() floats, which the call only reads.
        check(unsafe {
            sys::deissn_calibrator_add(self.as_mut_ptr(), step, eps.as_ptr(), eps.len(), samples)
        })?;
        Ok(())
    }

    /// Add `other`'s sums. Errors: `Mismatch` (other step times), `Size` (overflow).
    pub fn merge(&mut self, other: &Calibrator) -> Result<()> {
        check(unsafe { sys::deissn_calibrator_merge(self.as_mut_ptr(), other.ptr.as_ptr()) })?;
        Ok(())
    }

    /// The raw sums, counts and samples (e.g. to all-reduce across processes).
    pub fn sums(&self) -> CalibrationSums {
        let n = self.steps() as usize;
        let (mut sums, mut counts, mut samples) = (vec![0i64; n], vec![0u64; n], 0u64);
        // SAFETY: both arrays hold n = N values, as the call requires.
        let rc = unsafe {
            sys::deissn_calibrator_get_sums(self.ptr.as_ptr(), sums.as_mut_ptr(),
                                            counts.as_mut_ptr(), n, &mut samples)
        };
        debug_assert_eq!(rc, 0);
        CalibrationSums { sums, counts, samples }
    }

    /// Add raw sums (from [`Calibrator::sums`] of another calibrator over the same steps).
    /// Errors: `Size` (other lengths, overflow), `InvalidArgument` (a negative sum).
    pub fn add_sums(&mut self, s: &CalibrationSums) -> Result<()> {
        if s.sums.len() != s.counts.len() {
            return Err(Error::new(ErrorKind::Size, format!(
                "Calibrator::add_sums: {} sums but {} counts", s.sums.len(), s.counts.len())));
        }
        // SAFETY: both arrays hold sums.len() values, which the call only reads.
        check(unsafe {
            sys::deissn_calibrator_add_sums(self.as_mut_ptr(), s.sums.as_ptr(), s.counts.as_ptr(),
                                            s.sums.len(), s.samples)
        })?;
        Ok(())
    }

    /// The table: r = mean |eps| per step, the `clip` knots nearest tau = 0 set to the next
    /// one's value, `metadata` stored with it. The calibrator is unchanged. Errors: `State` (a
    /// step has no values), `InvalidArgument` (clip >= N, metadata too long).
    pub fn finish(&self, clip: u32, metadata: Option<&str>) -> Result<NormTable> {
        let (p, _meta) = table_params("Calibrator::finish", clip, metadata)?;
        let mut out = ptr::null_mut();
        // SAFETY: p and the metadata it points to outlive the call, which copies them.
        let rc = unsafe { sys::deissn_calibrator_finish(&mut out, self.ptr.as_ptr(), &p) };
        NormTable::from_raw(rc, out)
    }
}

impl Drop for Calibrator {
    fn drop(&mut self) {
        unsafe { sys::deissn_calibrator_free(self.ptr.as_ptr()) }
    }
}
