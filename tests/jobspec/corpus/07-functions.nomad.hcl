locals {
  ports    = [8080, 8081, 8082]
  regions  = { east = "us-east-1", west = "us-west-2" }
  csv_rows = csvdecode("name,size\na,1\nb,2\n")
}

job "functions" {
  meta {
    upper       = upper("hello")
    lower       = lower("WORLD")
    title       = title("the quick fox")
    joined      = join(",", [for p in local.ports : tostring(p)])
    formatted   = format("%s-%03d", "node", 7)
    fmtlist     = join(" ", formatlist("<%s>", ["a", "b"]))
    replaced    = replace("a-b-c", "-", "_")
    regexed     = regex_replace("v1.2.3", "[.]", "_")
    trimmed     = trimspace("  padded  ")
    prefix      = trimprefix("prefix-body", "prefix-")
    suffix      = trimsuffix("body.txt", ".txt")
    trimchars   = trim("xxhixx", "x")
    chomped     = chomp("line\n")
    indented    = indent(2, "a\nb")
    substring   = substr("abcdef", 1, 3)
    reversed    = strrev("abc")
    length      = length(local.ports)
    strlen      = strlen("four")
    maximum     = max(3, 9, 4)
    minimum     = min(3, 9, 4)
    absolute    = abs(-4)
    ceiling     = ceil(1.2)
    floored     = floor(1.8)
    power       = pow(2, 10)
    logarithm   = log(8, 2)
    signed      = signum(-3)
    parsed      = parseint("ff", 16)
    keys        = join(",", keys(local.regions))
    values      = join(",", values(local.regions))
    lookup      = lookup(local.regions, "north", "none")
    element     = element(local.ports, 4)
    index       = index(local.ports, 8081)
    contains    = contains(local.ports, 8082)
    coalesced   = coalesce("", "fallback")
    coalesclist = length(coalescelist([], [1, 2]))
    compacted   = join(",", compact(["a", "", "b"]))
    concat      = length(concat([1], [2, 3]))
    distinct    = length(distinct([1, 1, 2]))
    flattened   = length(flatten([[1, 2], [3]]))
    chunks      = length(chunklist([1, 2, 3, 4, 5], 2))
    merged      = jsonencode(merge({ a = 1 }, { b = 2 }))
    ranged      = jsonencode(range(1, 4))
    sliced      = jsonencode(slice([1, 2, 3, 4], 1, 3))
    sorted      = join(",", sort(["c", "a", "b"]))
    reverse     = jsonencode(reverse([1, 2, 3]))
    intersect   = jsonencode(setintersection(["a", "b"], ["b", "c"]))
    union       = jsonencode(setunion(["a"], ["b"]))
    product     = jsonencode(setproduct(["x"], ["1", "2"]))
    zipped      = jsonencode(zipmap(["a", "b"], [1, 2]))
    split       = jsonencode(split(",", "a,b"))
    b64         = base64encode("hi")
    unb64       = base64decode("aGk=")
    json        = jsondecode("{\"a\": 1}").a
    yaml        = yamlencode({ a = "b" })
    unyaml      = yamldecode("x: 1\n").x
    url         = urlencode("a b&c")
    sha256      = sha256("abc")
    sha512      = substr(sha512("abc"), 0, 16)
    uuid5       = uuidv5("dns", "example.com")
    csv         = local.csv_rows[1].name
    cidrhost    = cidrhost("10.0.0.0/24", 5)
    cidrmask    = cidrnetmask("10.0.0.0/20")
    cidrsub     = cidrsubnet("10.0.0.0/16", 8, 3)
    cidrsubs    = jsonencode(cidrsubnets("10.0.0.0/16", 8, 8))
    date        = formatdate("YYYY-MM-DD", "2025-03-04T05:06:07Z")
    later       = timeadd("2025-03-04T05:06:07Z", "90m")
    converted   = convert(12, string)
    tried       = try(local.regions.north, "no-north")
    can         = can(local.regions.east)
    number      = tonumber("42") + 1
    bool        = tobool("true")
  }

  group "g" {
    task "t" {
      driver = "raw_exec"

      config {
        command = "/bin/true"
      }
    }
  }
}
