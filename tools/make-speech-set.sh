#!/usr/bin/env bash
# Writes a small keyword-spotting set in the Google Speech Commands layout, spoken by
# Debian's espeak-ng over its English voices, voice variants, speeds and pitches, with
# seeded background noise mixed in by sox. No downloads; same seed, same files.
#
#   tools/make-speech-set.sh OUT_DIR [--speakers N] [--takes K] [--seed S] [--words "w1 w2 ..."]
#
# OUT_DIR/WORD/SPEAKER_nohash_K.wav   16 kHz, 16-bit, mono, 1 s
# OUT_DIR/_background_noise_/*.wav    10 s of white, pink and brown noise
#
# A "speaker" is one espeak-ng voice + variant + speed + pitch, so the speaker split of
# `audio:DIR` keeps all its clips in one split. Needs espeak-ng and sox.
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 ]] || usage
out=$1; shift
speakers=12
takes=2
seed=0
words="yes no up down left right on off stop go zero one two three bed bird cat dog house tree"
while [[ $# -gt 0 ]]; do
  case $1 in
    --speakers) speakers=$2; shift 2 ;;
    --takes) takes=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --words) words=$2; shift 2 ;;
    *) usage ;;
  esac
done
for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make-speech-set: $tool is not installed" >&2; exit 1; }
done
[[ $speakers =~ ^[0-9]+$ && $speakers -ge 1 && $takes =~ ^[0-9]+$ && $takes -ge 1 && $seed =~ ^[0-9]+$ ]] \
  || { echo "make-speech-set: --speakers/--takes must be >= 1 and --seed a whole number" >&2; exit 2; }

RANDOM=$seed
voices=(en-us en-gb en-gb-scotland en-gb-x-rp en-029 en-gb-x-gbclan en-gb-x-gbcwmd)
variants=(m1 m2 m3 m4 m5 m6 m7 f1 f2 f3 f4 f5 klatt klatt2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$out/_background_noise_"
for kind in white pink brown; do
  sox -V1 -R -D -n -r 16000 -b 16 -c 1 "$out/_background_noise_/${kind}_noise.wav" synth 10 "${kind}noise" vol 0.3
done

n=0
for ((s = 0; s < speakers; s++)); do
  voice=${voices[RANDOM % ${#voices[@]}]}
  variant=${variants[RANDOM % ${#variants[@]}]}
  speed=$((120 + RANDOM % 90))
  pitch=$((20 + RANDOM % 60))
  spk=$(printf 's%03d%s' "$s" "$variant")
  for word in $words; do
    mkdir -p "$out/$word"
    for ((k = 0; k < takes; k++)); do
      wspeed=$((speed + RANDOM % 21 - 10))
      espeak-ng -v "$voice+$variant" -s "$wspeed" -p "$pitch" -w "$tmp/raw.wav" "$word"
      # 16 kHz, leading silence 0-250 ms, padded and cut to exactly 1 s.
      # (RANDOM is drawn outside $(...): a subshell reseeds it.)
      r=$((RANDOM % 250)); lead=$(printf '0.%03d' "$r")
      gain=$((1 + RANDOM % 12))
      sox -V1 -R -D "$tmp/raw.wav" -r 16000 -b 16 -c 1 "$tmp/clip.wav" norm "-$gain" pad "$lead" 1 trim 0 1
      kinds=(white pink brown)
      noise=${kinds[RANDOM % 3]}
      offset=$((RANDOM % 9))
      r=$((RANDOM % 60)); vol=$(printf '0.%03d' "$r")
      sox -V1 -R -D "$out/_background_noise_/${noise}_noise.wav" "$tmp/noise.wav" trim "$offset" 1 vol "$vol"
      sox -V1 -R -D -m "$tmp/clip.wav" "$tmp/noise.wav" -b 16 "$out/$word/${spk}_nohash_${k}.wav"
      n=$((n + 1))
    done
  done
done
echo "make-speech-set: $n clips of $(wc -w <<<"$words") words by $speakers speakers in $out"
