"""Build bnnbench's Cython kernels with the best flags this compiler accepts.

Each candidate flag is tried on a tiny program with the compiler that will build
the extensions; what fails is dropped, so the same source builds on x86-64
(-march=native), ARM (-mcpu=native) and compilers without OpenMP. The flags
actually used are compiled into the extensions (BNNBENCH_CFLAGS) so a run file
always records how its kernels were built.

Environment:
  BNNBENCH_PORTABLE=1   no native CPU flags and no intrinsics paths: the plain
                        C kernels every gcc/clang builds (tested in CI).
  BNNBENCH_NO_OPENMP=1  build without OpenMP (the *_omp methods are unavailable).
  BNNBENCH_EMULATE_AVX512=1
                        the AVX-512 VPOPCNTDQ kernels with their intrinsics
                        emulated by SIMDe (package simde-py): slow, but lets CI
                        check that path's exactness on hosts without AVX-512.
  BNNBENCH_CFLAGS="..." extra flags appended after the detected ones.
"""
import glob
import os
import shlex
import sys
import tempfile

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

OPENMP_PROBE = "#include <omp.h>\nint main(void){return omp_get_max_threads() > 0 ? 0 : 1;}\n"
PLAIN_PROBE = "int main(void){return 0;}\n"
# Fails only on 32-bit ARM with NEON off; then NEON_PROBE checks a fix.
NEON_OFF_PROBE = ("#if defined(__arm__) && !defined(__aarch64__) && !defined(__ARM_NEON)\n"
                  "#error NEON is off\n#endif\n" + PLAIN_PROBE)
NEON_PROBE = "#ifndef __ARM_NEON\n#error no NEON\n#endif\n" + PLAIN_PROBE


def _env_on(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _simde_include():
    try:
        import simde_py
    except ImportError:
        sys.exit("bnnbench: BNNBENCH_EMULATE_AVX512=1 needs SIMDe: pip install simde-py")
    return simde_py.get_include()


class BuildPy(build_py):
    """An installed bnnbench (a wheel) carries what a device needs to build
    it again: `bnnbench fleet` ships an installed package's source to its
    devices, which compile the kernels themselves. The kernel sources and
    the build files go into bnnbench/kernels_pyx/ of the built package; an
    editable install reads them from the source tree instead."""

    SOURCES = ("kernels_pyx/*.pyx", "kernels_pyx/*.pxd", "kernels_pyx/*.h",
               "setup.py", "pyproject.toml")

    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        target = os.path.join(self.build_lib, "bnnbench", "kernels_pyx")
        self.mkpath(target)
        for pattern in self.SOURCES:
            for path in sorted(glob.glob(os.path.join(here, pattern))):
                self.copy_file(path, os.path.join(target, os.path.basename(path)))


class BuildExt(build_ext):
    def _compiles(self, flags, source=PLAIN_PROBE, link=False):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "probe.c")
            with open(path, "w") as fh:
                fh.write(source)
            try:
                objs = self.compiler.compile([path], output_dir=tmp, extra_postargs=flags)
                if link:
                    self.compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                                  extra_postargs=flags)
            except Exception:
                return False
        return True

    def _choose_flags(self):
        compile_flags, link_flags = [], []
        # Probes see the user's flags too: a -mcpu there changes what NEON needs.
        extra = shlex.split(os.environ.get("BNNBENCH_CFLAGS", ""))
        for flag in ("-O3", "-fno-strict-aliasing"):
            if self._compiles([flag]):
                compile_flags.append(flag)
        portable = _env_on("BNNBENCH_PORTABLE")
        if not portable:
            # x86 and recent ARM gcc/clang take -march=native; older ARM compilers
            # only know -mcpu=native.
            for flag in ("-march=native", "-mcpu=native"):
                if self._compiles([flag]):
                    compile_flags.append(flag)
                    break
            # 32-bit ARM gcc keeps its configured FPU (plain vfp on Raspberry Pi
            # OS) whatever core -mcpu names, which hides NEON from the kernels;
            # -mfpu=auto (gcc >= 8) takes the FPU of that core, so a core
            # without NEON still gets none.
            if (not self._compiles(compile_flags + extra, NEON_OFF_PROBE)
                    and self._compiles(compile_flags + ["-mfpu=auto"] + extra, NEON_PROBE)):
                compile_flags.append("-mfpu=auto")
        openmp = False
        if not _env_on("BNNBENCH_NO_OPENMP"):
            for flag in ("-fopenmp", "-Xpreprocessor -fopenmp"):
                parts = shlex.split(flag)
                if self._compiles(parts, OPENMP_PROBE, link=True):
                    compile_flags += parts
                    link_flags += parts
                    openmp = True
                    break
        compile_flags += extra
        return compile_flags, link_flags, portable, openmp

    def build_extensions(self):
        compile_flags, link_flags, portable, openmp = self._choose_flags()
        emulate_avx512 = _simde_include() if _env_on("BNNBENCH_EMULATE_AVX512") else None
        recorded = " ".join(compile_flags)
        print(f"bnnbench: building kernels with {recorded!r} "
              f"(portable={portable}, openmp={openmp})", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = list(compile_flags)
            ext.extra_link_args = list(link_flags)
            ext.define_macros = [("BNNBENCH_CFLAGS", f'"{recorded}"'),
                                 ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
            if portable:
                ext.define_macros.append(("BNN_PORTABLE", "1"))
            if emulate_avx512:
                ext.define_macros.append(("BNN_EMULATE_AVX512", "1"))
                ext.include_dirs.append(emulate_avx512)
        super().build_extensions()


def kernel(name):
    return Extension(f"bnnbench._{name}", [f"kernels_pyx/{name}.pyx"],
                     include_dirs=["kernels_pyx", numpy.get_include()],
                     depends=glob.glob("kernels_pyx/*.h") + glob.glob("kernels_pyx/*.pxd"))


def extensions():
    from Cython.Build import cythonize
    return cythonize([kernel("bitpack"), kernel("xnor_gemm"), kernel("float_gemm"),
                      kernel("buildinfo"), kernel("probe"), kernel("bconv"),
                      kernel("netops")],
                     compiler_directives={"language_level": "3", "boundscheck": False,
                                          "wraparound": False, "cdivision": True,
                                          "initializedcheck": False})


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt, "build_py": BuildPy})
