#!/usr/bin/env bash
# Builds the examples the way a user and a vendor would: from an installed pfa only.
#   1. stages `cmake --install` of the build into a temporary prefix, checks the package files
#      carry no path of the build machine, and moves the prefix (it must be relocatable);
#   2. configures and builds examples/embed_app, examples/learned_app and examples/vendor_plugin
#      against it;
#   3. runs embed_app (routed, then forced onto the vendor plugin), and learned_app (records runs,
#      trains a model with pfa::learner, routes by it);
#   4. points PFA_PLUGIN_PATH at the vendor plugin: `pfa-tune plugins` lists it, `pfa-tune bench`
#      measures it and records the runs, `pfa-tune conformance --strict` passes it.
# Usage: run_examples.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$(cd "$1" && pwd)"
source_dir="$(cd "$2" && pwd)"
cmake_bin="${CMAKE_COMMAND:-cmake}"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
compiler=()
[ -n "${CXX:-}" ] && compiler=(-DCMAKE_CXX_COMPILER="$CXX")

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
unset PFA_PLUGIN_PATH
fail() { echo "run_examples: FAIL: $*" >&2; exit 1; }

echo "== install into a staging prefix"
"$cmake_bin" --install "$build" --prefix "$work/staged" > "$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }
for f in include/pfa/plugin_abi.h include/pfa/engine.h include/pfa/learner/self_learning_router.h \
         lib/libpfa.so lib/libpfa_learner.so lib/cmake/pfa/pfaConfig.cmake \
         lib/cmake/pfa/pfaConfigVersion.cmake lib/cmake/pfa/pfaTargets.cmake bin/pfa-tune; do
  [ -e "$work/staged/$f" ] || fail "$f was not installed"
done
if grep -rl -e "$build" -e "$source_dir" "$work/staged/lib/cmake" > /dev/null; then
  fail "the package files name the build machine's paths: $(grep -rl -e "$build" -e "$source_dir" "$work/staged/lib/cmake")"
fi
mv "$work/staged" "$work/pfa"  # relocatable: nothing may point at the old prefix
prefix="$work/pfa"

configure() {  # configure SOURCE BUILD
  "$cmake_bin" -S "$1" -B "$2" "${generator[@]}" "${compiler[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" > "$2.log" 2>&1 || { cat "$2.log"; fail "configure $1"; }
  "$cmake_bin" --build "$2" >> "$2.log" 2>&1 || { cat "$2.log"; fail "build $1"; }
}

echo "== build examples/embed_app, examples/learned_app and examples/vendor_plugin against $prefix"
configure "$source_dir/examples/embed_app" "$work/embed"
configure "$source_dir/examples/learned_app" "$work/learned"
configure "$source_dir/examples/vendor_plugin" "$work/vendor"
plugin="$work/vendor/pfa_plugin_acme_npu.so"
[ -f "$plugin" ] || fail "the vendor plugin was not built"

echo "== embed_app (routed)"
"$work/embed/embed_app" | tee "$work/embed.out"
grep -q "^  backend " "$work/embed.out" || fail "embed_app printed no Report"

echo "== learned_app (record, train with pfa::learner, route by the model)"
"$work/learned/learned_app" "$work/learned.db" | tee "$work/learned.out"
grep -q "activated=yes" "$work/learned.out" || fail "learned_app activated no model"
grep -q "^router: learned" "$work/learned.out" || fail "learned_app did not route by the learned router"

export PFA_PLUGIN_PATH="$work/vendor"
store=(--store "$work/pfa.db")

echo "== pfa-tune plugins with PFA_PLUGIN_PATH=$PFA_PLUGIN_PATH"
"$prefix/bin/pfa-tune" "${store[@]}" plugins | tee "$work/plugins.out"
grep -q "^acme_npu " "$work/plugins.out" || fail "the engine did not load the vendor plugin"

echo "== embed_app --backend acme_npu"
"$work/embed/embed_app" --backend acme_npu --causal | tee "$work/embed2.out"
grep -q "^  backend         acme_npu" "$work/embed2.out" || fail "embed_app did not run on acme_npu"

echo "== pfa-tune bench --backends acme_npu,cpu_flash"
"$prefix/bin/pfa-tune" "${store[@]}" --quiet bench --backends acme_npu,cpu_flash --repeat 2 \
  --grid "batch=1;heads_q=4;seqlen_q=16,64;head_dim=32;dtype=fp32,bf16;causal=0,1" | tee "$work/bench.out"
[ "$(grep -c " acme_npu .* reference" "$work/bench.out")" = 8 ] || fail "bench did not measure acme_npu on all 8 shapes"
grep -q "^recorded " "$work/bench.out" || fail "bench recorded nothing"

echo "== pfa-tune conformance --strict"
"$prefix/bin/pfa-tune" --quiet conformance --strict "$plugin" | tee "$work/conformance.out"
grep -q "=> PASS" "$work/conformance.out" || fail "the vendor plugin failed conformance"
echo "run_examples: all passed"
