{ n ? 50, salt ? "", parallel ? false }:
let
  bb = builtins.path { path = ./bb; name = "bb"; };
  step = i: deps: derivation {
    name = "step-${toString i}";
    system = "x86_64-linux";
    builder = "${bb}/sh";
    args = [ "-c" "${bb}/busybox mkdir $out; echo ${salt}${toString i} > $out/n ${builtins.concatStringsSep " " (map (d: "; ${bb}/busybox cat ${d}/n >> $out/n") deps)}" ];
  };
  chain = builtins.foldl' (prev: i: [ (step i prev) ]) [] (builtins.genList (x: x) n);
  fan = builtins.genList (i: step i []) n;
in if parallel then fan else chain
