#!/usr/bin/env bash
# The OASIS UBL 2.1 XML schemas the document tests validate against, fetched once
# into .cache/ubl/2.1 from Maven Central (pinned versions, checked by SHA-256):
#
#   infra/ubl_schemas.sh        # prints the schema folder (maindoc/, common/)
#
# ph-ubl21 carries the OASIS UBL 2.1 schemas unchanged; the schemas UBL imports by
# namespace only (CCTS core component types, XML-DSig, XAdES 1.3.2 and 1.4.1) come
# from the ph-xsds jars. Those namespace-only imports get a schemaLocation here, in the
# file names of the OASIS distribution, so libxml2 (lxml) can resolve them offline.
set -euo pipefail
cd "$(dirname "$0")/.."

MAVEN=https://repo1.maven.org/maven2
UBL_VERSION=10.2.0
XSDS_VERSION=4.1.0
# artifact path | sha256
JARS=(
  "com/helger/ubl/ph-ubl21/$UBL_VERSION/ph-ubl21-$UBL_VERSION.jar|7317ddd448f58cdf4e550878d839be8d3324b410771ba462a35ced49ccb26a52"
  "com/helger/xsd/ph-xsds-ccts-cct-schemamodule/$XSDS_VERSION/ph-xsds-ccts-cct-schemamodule-$XSDS_VERSION.jar|ec0e60be5265b09fac75a57a4b284244820c23f0481a1c75802ba4eb6338b0fd"
  "com/helger/xsd/ph-xsds-xmldsig/$XSDS_VERSION/ph-xsds-xmldsig-$XSDS_VERSION.jar|66590e38b0994d0fd6cd89b1588a3c96fad3a3c85494cf764783fe0c4acc9c3d"
  "com/helger/xsd/ph-xsds-xades132/$XSDS_VERSION/ph-xsds-xades132-$XSDS_VERSION.jar|d90bdb2359bbef63bd789af238fb135dd7ada0ba9722f4e2825cd210dada013c"
  "com/helger/xsd/ph-xsds-xades141/$XSDS_VERSION/ph-xsds-xades141-$XSDS_VERSION.jar|b34b2670774e9de79653767fd667d86823261c153f706c2344889d0702f54e41"
)

CACHE=.cache/ubl
OUT=$CACHE/2.1
STAMP=$OUT/.ready-$UBL_VERSION-$XSDS_VERSION

die() { echo "ubl_schemas.sh: $*" >&2; exit 1; }

if [[ -f $STAMP ]]; then
  echo "$PWD/$OUT"
  exit 0
fi

mkdir -p "$CACHE/jars"
for entry in "${JARS[@]}"; do
  path=${entry%%|*}
  sum=${entry##*|}
  jar=$CACHE/jars/$(basename "$path")
  if [[ ! -f $jar ]] || ! echo "$sum  $jar" | sha256sum --check --status; then
    curl -fsSL --retry 3 -o "$jar.part" "$MAVEN/$path" || die "cannot download $MAVEN/$path"
    echo "$sum  $jar.part" | sha256sum --check --status || die "checksum mismatch for $path"
    mv "$jar.part" "$jar"
  fi
done

# jar | member | file under $OUT
extract() {
  local jar=$CACHE/jars/$1 member=$2 target=$OUT/$3
  mkdir -p "$(dirname "$target")"
  python3 - "$jar" "$member" "$target" <<'PY'
import sys, zipfile
jar, member, target = sys.argv[1:]
with zipfile.ZipFile(jar) as z, open(target, "wb") as out:
    out.write(z.read(member))
PY
}

rm -rf "$OUT"
mkdir -p "$OUT"
python3 - "$CACHE/jars/ph-ubl21-$UBL_VERSION.jar" "$OUT" <<'PY'
import sys, zipfile
from pathlib import Path
jar, out = sys.argv[1], Path(sys.argv[2])
prefix = "external/schemas/ubl21/"
with zipfile.ZipFile(jar) as z:
    for name in z.namelist():
        if name.startswith(prefix) and name.endswith(".xsd"):
            target = out / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(z.read(name))
PY
extract "ph-xsds-ccts-cct-schemamodule-$XSDS_VERSION.jar" schemas/CCTS_CCT_SchemaModule.xsd common/CCTS_CCT_SchemaModule-2.1.xsd
extract "ph-xsds-xmldsig-$XSDS_VERSION.jar" schemas/xmldsig-core-schema.xsd common/UBL-xmldsig-core-schema-2.1.xsd
extract "ph-xsds-xades132-$XSDS_VERSION.jar" schemas/XAdES01903v132-201601.xsd common/UBL-XAdESv132-2.1.xsd
extract "ph-xsds-xades141-$XSDS_VERSION.jar" schemas/XAdES01903v141-201601.xsd common/UBL-XAdESv141-2.1.xsd

[[ -f $OUT/maindoc/UBL-Invoice-2.1.xsd && -f $OUT/maindoc/UBL-CreditNote-2.1.xsd ]] \
  || die "the UBL jar has no Invoice/CreditNote schema"

# Give every namespace-only import a location (the OASIS distribution's file names).
python3 - "$OUT/common" <<'PY'
import re, sys
from pathlib import Path
common = Path(sys.argv[1])
locations = {
    "urn:un:unece:uncefact:data:specification:CoreComponentTypeSchemaModule:2":
        "CCTS_CCT_SchemaModule-2.1.xsd",
    "http://www.w3.org/2000/09/xmldsig#": "UBL-xmldsig-core-schema-2.1.xsd",
    "http://uri.etsi.org/01903/v1.3.2#": "UBL-XAdESv132-2.1.xsd",
    "http://uri.etsi.org/01903/v1.4.1#": "UBL-XAdESv141-2.1.xsd",
}
pattern = re.compile(r'<xsd:import\s+namespace="([^"]+)"\s*/>')
for path in common.glob("*.xsd"):
    text = path.read_text(encoding="utf-8")
    def locate(match: re.Match[str]) -> str:
        location = locations.get(match.group(1))
        if location is None:
            raise SystemExit(f"{path.name}: no location known for {match.group(1)}")
        return f'<xsd:import namespace="{match.group(1)}" schemaLocation="{location}"/>'
    patched = pattern.sub(locate, text)
    if patched != text:
        path.write_text(patched, encoding="utf-8")
PY

touch "$STAMP"
echo "$PWD/$OUT"
