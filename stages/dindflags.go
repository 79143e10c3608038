package stages

import (
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gitlab.com/dind-executor/dind-executor/config"
	"gitlab.com/dind-executor/dind-executor/executor"
)

// What a job asks of its daemon through its docker:*dind* services, the
// way pipelines written for the docker executor ask it of their dind
// service container: dockerd flags in the service's command (or
// entrypoint), and the variables dockerd reads. The sandbox's daemon takes
// the flags of an allow-list (dockerdFlags), each of which only changes how
// the daemon serves the job's own pulls, pushes and containers; every
// other flag is refused at prepare, naming it and saying what to do. The
// executor adds what is taken to the operator's [daemon] settings, never
// in their place (executor.DaemonRequest).

// dockerdFlag is one dockerd flag and what a job may do with it.
type dockerdFlag struct {
	long   string // without "--"
	short  string // one letter, or ""
	isBool bool   // --flag, --flag=false; never --flag false
	// check says what is wrong with a value, or "": set for the flags a
	// job may set.
	check func(string) string
	// refused says why a job may not set the flag: set for the flags that
	// would open or weaken the daemon, or take it from the executor.
	refused string
}

// Why flags are refused, each a reason and what to do instead.
const (
	whyEndpoint = "it would change who can reach the daemon: the sandbox's daemon answers only tcp://docker:2376, " +
		"over mutual TLS with this job's own certificate (the build container has DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH set for it)"
	whyState = "the executor decides where the daemon keeps its state and reads its settings (its data root is the sandbox's volume " +
		"or the project's layer cache; exec root, pid file, containerd and config file are the executor's)"
	whyConfinement = "it would change how the daemon or the containers it starts are confined or run: cgroups hold the sandbox's limits, " +
		"and runtimes, profiles and helper binaries would be files in the daemon container that the executor does not provide"
	whyUsers = "the sandbox's daemon is rootful, and remapping its users moves its data root (the project's layer cache) under a " +
		"subdirectory the executor's cleanup does not look in; a job that needs rootless Docker needs a runner with a rootless profile"
	whyAuthz = "the executor talks to the daemon too (readiness, what the job produced for the audit trail, the layer cache's cleanup), " +
		"and a plugin of the job's choosing would decide what it may do"
	whyExit = "it makes dockerd print something and exit instead of serving the job"
	whyLive = "the sandbox's daemon lives exactly as long as the job, so there is nothing to restore, and the layer cache is kept " +
		"only once the daemon has stopped every container"
)

// dockerdFlags are the flags of dockerd a dind service may carry, and
// those refused with a reason; any other flag is refused as not listed.
//
// Allowed, and why each cannot weaken the sandbox: registry mirrors and
// insecure registries change only where the job's own pulls and pushes
// go, and how they trust a registry the job names; the network flags
// (MTU, DNS, address pools, bridge ranges, IPv6, iptables, masquerading,
// inter-container traffic, the userland proxy) shape the networks inside
// the daemon container's own network namespace, which the outer Engine's
// rules keep apart from every other sandbox whatever rules the inner
// daemon makes or skips; storage driver, log level, debug, experimental,
// features, download and upload concurrency, default ulimits (each
// container the job starts could set its own) and the daemon's proxy
// change nothing but the daemon's own behaviour towards the job.
var dockerdFlags = []dockerdFlag{
	{long: "registry-mirror", check: config.RegistryMirrorProblem},
	{long: "insecure-registry", check: config.InsecureRegistryProblem},
	{long: "mtu", check: intIn(config.MinMTU, config.MaxMTU)},
	{long: "dns", check: ipValue},
	{long: "dns-search", check: dnsSearchValue},
	{long: "dns-opt", check: dnsOptValue},
	{long: "default-address-pool", check: addressPoolValue},
	{long: "bip", check: bipValue},
	{long: "fixed-cidr", check: cidrValue},
	{long: "fixed-cidr-v6", check: cidrValue},
	{long: "ipv6", isBool: true},
	{long: "ip6tables", isBool: true},
	{long: "iptables", isBool: true},
	{long: "ip-masq", isBool: true},
	{long: "icc", isBool: true},
	{long: "userland-proxy", isBool: true},
	{long: "storage-driver", short: "s", check: oneOf(storageDrivers...)},
	{long: "experimental", isBool: true},
	{long: "feature", check: featureValue},
	{long: "log-level", short: "l", check: oneOf("debug", "info", "warn", "error", "fatal")},
	{long: "debug", short: "D", isBool: true},
	{long: "max-concurrent-downloads", check: intIn(1, 100)},
	{long: "max-concurrent-uploads", check: intIn(1, 100)},
	{long: "max-download-attempts", check: intIn(1, 100)},
	{long: "default-ulimit", check: ulimitValue},
	{long: "http-proxy", check: proxyValue},
	{long: "https-proxy", check: proxyValue},
	{long: "no-proxy", check: noProxyValue},

	// "host" and "tls"/"tlsverify" are refused unless they ask for what
	// the sandbox's daemon already serves (takeEndpoint).
	{long: "host", short: "H", refused: whyEndpoint},
	{long: "tls", isBool: true, refused: whyEndpoint},
	{long: "tlsverify", isBool: true, refused: whyEndpoint},
	{long: "tlscacert", refused: whyEndpoint},
	{long: "tlscert", refused: whyEndpoint},
	{long: "tlskey", refused: whyEndpoint},
	{long: "group", short: "G", refused: whyEndpoint},
	{long: "api-cors-header", refused: whyEndpoint},
	{long: "metrics-addr", refused: whyEndpoint},
	{long: "data-root", refused: whyState},
	{long: "exec-root", refused: whyState},
	{long: "pidfile", short: "p", refused: whyState},
	{long: "containerd", refused: whyState},
	{long: "containerd-namespace", refused: whyState},
	{long: "containerd-plugins-namespace", refused: whyState},
	{long: "config-file", refused: whyState},
	{long: "cgroup-parent", refused: whyConfinement},
	{long: "default-cgroupns-mode", refused: whyConfinement},
	{long: "exec-opt", refused: whyConfinement},
	{long: "default-runtime", refused: whyConfinement},
	{long: "add-runtime", refused: whyConfinement},
	{long: "seccomp-profile", refused: whyConfinement},
	{long: "init-path", refused: whyConfinement},
	{long: "userland-proxy-path", refused: whyConfinement},
	{long: "oom-score-adjust", refused: whyConfinement},
	{long: "userns-remap", refused: whyUsers},
	{long: "rootless", isBool: true, refused: whyUsers},
	{long: "authorization-plugin", refused: whyAuthz},
	{long: "live-restore", isBool: true, refused: whyLive},
	{long: "validate", isBool: true, refused: whyExit},
	{long: "version", short: "v", isBool: true, refused: whyExit},
	{long: "help", short: "h", isBool: true, refused: whyExit},
}

// storageDrivers are the storage drivers a job may pick: those that work
// on a dind daemon's data root whatever the host's file system.
var storageDrivers = []string{"overlay2", "fuse-overlayfs", "vfs"}

// dockerdVariables are the variables of a dind service that dockerd reads
// and the sandbox's daemon gets: the proxy, and DOCKER_DRIVER (as
// --storage-driver).
var dockerdVariables = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "DOCKER_DRIVER"}

func lookupFlag(long, short string) *dockerdFlag {
	for i := range dockerdFlags {
		f := &dockerdFlags[i]
		if (long != "" && f.long == long) || (short != "" && f.short == short) {
			return f
		}
	}
	return nil
}

// allowedFlagNames lists the flags a job may set, for messages.
func allowedFlagNames() string {
	var names []string
	for _, f := range dockerdFlags {
		if f.refused == "" {
			n := "--" + f.long
			if f.short != "" {
				n = "-" + f.short + "/" + n
			}
			names = append(names, n)
		}
	}
	return strings.Join(names, ", ")
}

// givenFlag is one flag as a service's command line gives it.
type givenFlag struct {
	written string       // as written, value included: "--mtu 1400", "-s=vfs"
	flag    *dockerdFlag // nil: not one dockerdFlags knows
	value   string       // "true" for a boolean flag given alone
}

// dockerdArgs are the dockerd flags a dind service's entrypoint and
// command amount to. The docker executor runs the image's entrypoint
// (dockerd-entrypoint.sh, which starts dockerd with its TLS flags and the
// command's), or the service's own entrypoint with the command: either
// may name dockerd-entrypoint.sh or dockerd first. Anything else would
// run another program, which the sandbox's daemon cannot stand in for.
func dockerdArgs(s JobImage) ([]string, error) {
	args := slices.Clone(s.Command)
	if len(s.Entrypoint) > 0 && !(len(s.Entrypoint) == 1 && s.Entrypoint[0] == "") {
		args = append(slices.Clone(s.Entrypoint), s.Command...)
	}
	for _, program := range []string{"dockerd-entrypoint.sh", "dockerd"} {
		if len(args) > 0 && path.Base(args[0]) == program {
			args = args[1:]
		}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		where := "command"
		if len(s.Entrypoint) > 0 && s.Entrypoint[0] != "" {
			where = "entrypoint"
		}
		return nil, fmt.Errorf("service %s: its %s runs %q, not dockerd: the sandbox's own daemon stands in for this service, started by the dind image's entrypoint; "+
			"give dockerd flags only, e.g. command: [\"--mtu=1400\"], and drop the entrypoint", s.Name, where, args[0])
	}
	return args, nil
}

// parseDockerdFlags reads a dockerd command line as dockerd's flag parser
// does: --flag=value and --flag value, -s value, -svalue and -s=value,
// boolean flags alone or as --flag=false, short booleans run together
// (-Dl debug).
func parseDockerdFlags(args []string) ([]givenFlag, error) {
	var out []givenFlag
	// value takes a flag's value from the next argument.
	value := func(i *int, name string) (string, error) {
		if *i+1 >= len(args) || strings.HasPrefix(args[*i+1], "-") {
			return "", fmt.Errorf("%s needs a value (write %s=VALUE)", name, name)
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		tok := args[i]
		switch {
		case tok == "--":
			if i+1 < len(args) {
				return nil, fmt.Errorf("%q after \"--\" is an argument, and dockerd takes flags only", args[i+1])
			}
		case strings.HasPrefix(tok, "--"):
			name, v, hasValue := strings.Cut(tok[2:], "=")
			g := givenFlag{written: tok, flag: lookupFlag(name, ""), value: v}
			switch {
			case hasValue:
			case g.flag == nil:
				// Refused whatever follows; a value is shown with it.
				g.written += unknownValue(args, &i)
			case g.flag.isBool:
				g.value = "true"
			default:
				var err error
				if g.value, err = value(&i, "--"+name); err != nil {
					return nil, err
				}
				g.written += " " + g.value
			}
			out = append(out, g)
		case strings.HasPrefix(tok, "-") && len(tok) > 1:
			for j := 1; j < len(tok); j++ {
				letter := tok[j : j+1]
				g := givenFlag{written: "-" + letter, flag: lookupFlag("", letter)}
				rest := tok[j+1:]
				if g.flag == nil {
					g.written = tok
					if j == 1 && rest == "" {
						g.written += unknownValue(args, &i)
					}
					out = append(out, g)
					break
				}
				if g.flag.isBool && !strings.HasPrefix(rest, "=") {
					g.value = "true"
					out = append(out, g)
					continue
				}
				g.written, g.value = "-"+letter+rest, strings.TrimPrefix(rest, "=")
				if rest == "" {
					var err error
					if g.value, err = value(&i, "-"+letter); err != nil {
						return nil, err
					}
					g.written += " " + g.value
				}
				out = append(out, g)
				break
			}
		default:
			return nil, fmt.Errorf("%q is not a flag, and dockerd takes flags only (a boolean flag takes its value as --flag=false)", tok)
		}
	}
	return out, nil
}

// unknownValue takes the argument after an unknown flag when it is not a
// flag itself, to show it with the flag.
func unknownValue(args []string, i *int) string {
	if *i+1 < len(args) && !strings.HasPrefix(args[*i+1], "-") {
		*i++
		return " " + args[*i]
	}
	return ""
}

// plainMode is where the job stands towards a daemon without TLS.
type plainMode int

const (
	plainNotAsked plainMode = iota // the job's variables speak TLS
	plainServed                    // written with TLS off: a plain endpoint serves its build container
	plainRefused                   // the operator refuses plain endpoints (sandbox.plain_tcp)
)

// daemonAsk is what the job's dind services ask of the sandbox's daemon,
// checked, with lines for the job log.
type daemonAsk struct {
	request executor.DaemonRequest
	notes   []string
}

// askOfDaemon reads what the job's dind services ask of their daemon:
// their flags (dockerdArgs, parseDockerdFlags) and the variables dockerd
// reads, from the job's public variables and the service's own, as the
// docker executor gives them to the service container. It refuses what
// the sandbox's daemon does not take.
func askOfDaemon(job *JobResponse, plain plainMode) (daemonAsk, error) {
	var a daemonAsk
	var flagProxy executor.Proxy
	env := map[string]string{}
	storageFlag := false
	for _, s := range job.Services {
		if !IsDinDService(s.Name) {
			continue
		}
		args, err := dockerdArgs(s)
		if err != nil {
			return daemonAsk{}, err
		}
		given, err := parseDockerdFlags(args)
		if err != nil {
			return daemonAsk{}, fmt.Errorf("service %s: %w: write its command as dockerd flags, e.g. command: [\"--mtu=1400\", \"--registry-mirror=https://mirror.example.com\"]", s.Name, err)
		}
		var taken []string
		for _, g := range given {
			flag, note, err := a.take(s.Name, g, plain, &flagProxy)
			if err != nil {
				return daemonAsk{}, err
			}
			if note != "" {
				a.notes = append(a.notes, note)
			}
			if flag != "" {
				taken = append(taken, flag)
				storageFlag = storageFlag || g.flag.long == "storage-driver"
			}
		}
		if len(taken) > 0 {
			a.notes = append(a.notes, fmt.Sprintf("Service %s: its daemon takes %s", s.Name, strings.Join(taken, " ")))
		}

		for _, kv := range serviceEnv(job.Variables, s.Variables) {
			k, v, _ := strings.Cut(kv, "=")
			if slices.Contains(dockerdVariables, k) {
				env[k] = v
			}
		}
		// The service's own variables that go nowhere are worth a line;
		// the job's variables that every service gets are not.
		var ignored []string
		for _, v := range s.Variables {
			if !slices.Contains(dockerdVariables, v.Key) && v.Key != "DOCKER_TLS_CERTDIR" && !slices.Contains(ignored, v.Key) {
				ignored = append(ignored, v.Key)
			}
		}
		if len(ignored) > 0 {
			a.notes = append(a.notes, fmt.Sprintf("Service %s: its variables %s do not reach the sandbox's daemon, which reads only %s",
				s.Name, strings.Join(ignored, ", "), strings.Join(dockerdVariables, ", ")))
		}
	}
	if !slices.ContainsFunc(job.Services, func(s JobImage) bool { return IsDinDService(s.Name) }) {
		return a, nil
	}
	if err := a.takeVariables(env, flagProxy, storageFlag); err != nil {
		return daemonAsk{}, err
	}
	if serviceSetsTLSCertDir(job) {
		a.notes = append(a.notes, "DOCKER_TLS_CERTDIR does not reach the sandbox's daemon: it always has TLS, with certificates made for this job "+
			"(the build container's client certificate is in "+executor.ClientCertDir+")")
	}
	return a, nil
}

// serviceSetsTLSCertDir reports whether a dind service gets
// DOCKER_TLS_CERTDIR, from the job's variables or its own.
func serviceSetsTLSCertDir(job *JobResponse) bool {
	for _, s := range job.Services {
		if !IsDinDService(s.Name) {
			continue
		}
		for _, kv := range serviceEnv(job.Variables, s.Variables) {
			if strings.HasPrefix(kv, "DOCKER_TLS_CERTDIR=") {
				return true
			}
		}
	}
	return false
}

// take checks one flag and adds it to the request. It returns the flag as
// the daemon gets it ("" when it goes elsewhere in the request, or
// nowhere), and a line for the job log when the flag is not passed as
// written.
func (a *daemonAsk) take(service string, g givenFlag, plain plainMode, flagProxy *executor.Proxy) (string, string, error) {
	refuse := func(why string) error {
		return fmt.Errorf("service %s asks its Docker daemon for %s, which this executor refuses: %s; remove it from the service's command", service, strconv.Quote(g.written), why)
	}
	if g.flag != nil && (g.flag.long == "host" || g.flag.long == "tls" || g.flag.long == "tlsverify") {
		note, ok := servedEndpoint(g.flag.long, g.value, plain)
		if !ok {
			return "", "", fmt.Errorf("%w%s", refuse(g.flag.refused), tlsOffHint(plain))
		}
		return "", fmt.Sprintf("Service %s: %s is already what the sandbox's daemon serves (%s)", service, strconv.Quote(g.written), note), nil
	}
	f := g.flag
	if f == nil {
		return "", "", refuse("it is not among the dockerd flags a job may set here (" + allowedFlagNames() + "); " +
			"a setting every job needs can be made by the runner's operator in the [daemon] table")
	}
	if f.refused != "" {
		return "", "", refuse(f.refused)
	}
	if strings.ContainsFunc(g.value, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", fmt.Errorf("service %s asks its Docker daemon for %s: the value has a control character", service, strconv.Quote(g.written))
	}
	check := f.check
	if f.isBool {
		check = boolValue
	}
	if problem := check(g.value); problem != "" {
		return "", "", fmt.Errorf("service %s asks its Docker daemon for %s: %s %s", service, strconv.Quote(g.written), strconv.Quote(g.value), problem)
	}
	r := &a.request
	switch f.long {
	case "mtu":
		r.MTU, _ = strconv.Atoi(g.value)
		return "--mtu=" + g.value, "", nil
	case "feature":
		name, on := featureSetting(g.value)
		if r.Features == nil {
			r.Features = map[string]bool{}
		}
		r.Features[name] = on
		return "--feature=" + name + "=" + strconv.FormatBool(on), "", nil
	case "http-proxy":
		flagProxy.HTTP = g.value
		return "--http-proxy (as HTTP_PROXY)", "", nil
	case "https-proxy":
		flagProxy.HTTPS = g.value
		return "--https-proxy (as HTTPS_PROXY)", "", nil
	case "no-proxy":
		flagProxy.No = g.value
		return "--no-proxy (as NO_PROXY)", "", nil
	}
	flag := "--" + f.long + "=" + g.value
	if f.isBool {
		on, _ := strconv.ParseBool(g.value)
		flag = "--" + f.long
		if !on {
			flag += "=false"
		}
	}
	r.Flags = append(r.Flags, flag)
	return flag, "", nil
}

// servedEndpoint reports whether a --host, --tls or --tlsverify flag asks
// for what the sandbox's daemon already serves: its unix socket, its TLS
// port, TLS turned on; or, for a job written with TLS off, port 2375 and
// TLS turned off, which its build container's plain endpoint serves.
func servedEndpoint(flag, value string, plain plainMode) (string, bool) {
	if flag == "host" {
		switch value {
		case "unix:///var/run/docker.sock":
			return "its unix socket", true
		case "tcp://0.0.0.0:2376", "tcp://:2376":
			return "port 2376 with mutual TLS", true
		case "tcp://0.0.0.0:2375", "tcp://:2375":
			if plain == plainServed {
				return "the job's variables turn TLS off: port 2375 answers the build container", true
			}
		}
		return "", false
	}
	on, err := strconv.ParseBool(value)
	switch {
	case err != nil:
		return "", false
	case on:
		return "mutual TLS", true
	case plain == plainServed:
		return "the job's variables turn TLS off: port 2375 answers the build container without TLS", true
	}
	return "", false
}

// tlsOffHint tells a job that asks for a daemon without TLS how the
// sandbox serves that, when the operator allows it.
func tlsOffHint(plain plainMode) string {
	if plain != plainNotAsked {
		return ""
	}
	return "; or, for a daemon without TLS, set DOCKER_HOST=tcp://docker:2375 and DOCKER_TLS_CERTDIR=\"\" in the job's variables: " +
		"its build container then gets a plain endpoint of its own, and --tls=false may stay"
}

// takeVariables adds the variables dockerd reads to the request: the
// proxy (a --http-proxy style flag wins over the variable, upper case over
// lower case, as dockerd reads them) and DOCKER_DRIVER as --storage-driver
// (the flag wins).
func (a *daemonAsk) takeVariables(env map[string]string, flagProxy executor.Proxy, storageFlag bool) error {
	pick := func(flag, upper string) string {
		if flag != "" {
			return flag
		}
		if v := env[upper]; v != "" {
			return v
		}
		return env[strings.ToLower(upper)]
	}
	a.request.Proxy = executor.Proxy{
		HTTP:  pick(flagProxy.HTTP, "HTTP_PROXY"),
		HTTPS: pick(flagProxy.HTTPS, "HTTPS_PROXY"),
		No:    pick(flagProxy.No, "NO_PROXY"),
	}
	var reach []string
	for _, v := range []struct{ name, value string }{{"HTTP_PROXY", a.request.Proxy.HTTP}, {"HTTPS_PROXY", a.request.Proxy.HTTPS}, {"NO_PROXY", a.request.Proxy.No}} {
		if v.value != "" {
			reach = append(reach, v.name)
		}
	}
	if len(reach) > 0 {
		a.notes = append(a.notes, fmt.Sprintf("The job's %s reach its daemon (for its pulls and pushes), beside the runner's [daemon] settings", strings.Join(reach, ", ")))
	}
	driver := env["DOCKER_DRIVER"]
	switch {
	case driver == "":
	case storageFlag:
		a.notes = append(a.notes, "DOCKER_DRIVER is not applied: the dind service's --storage-driver holds")
	case slices.Contains(storageDrivers, driver):
		a.request.Flags = append(a.request.Flags, "--storage-driver="+driver)
		a.notes = append(a.notes, "DOCKER_DRIVER="+driver+" reaches the daemon as --storage-driver="+driver)
	default:
		return fmt.Errorf("DOCKER_DRIVER=%s asks the sandbox's daemon for a storage driver it does not take: use one of %s, or remove DOCKER_DRIVER from the job's variables",
			strconv.Quote(driver), strings.Join(storageDrivers, ", "))
	}
	return nil
}

// Checks of flag values: each says what is wrong, after the quoted value,
// or "".

func boolValue(v string) string {
	if _, err := strconv.ParseBool(v); err != nil {
		return "is not true or false"
	}
	return ""
}

func intIn(lo, hi int) func(string) string {
	return func(v string) string {
		if n, err := strconv.Atoi(v); err != nil || n < lo || n > hi {
			return fmt.Sprintf("is not a number from %d to %d", lo, hi)
		}
		return ""
	}
}

func oneOf(values ...string) func(string) string {
	return func(v string) string {
		if slices.Contains(values, v) {
			return ""
		}
		return "is not one of " + strings.Join(values, ", ")
	}
}

func ipValue(v string) string {
	if net.ParseIP(v) == nil {
		return "is not an IP address: write e.g. --dns=10.0.0.2"
	}
	return ""
}

func dnsSearchValue(v string) string {
	if v == "." || config.ValidDNSName(strings.TrimSuffix(v, ".")) {
		return ""
	}
	return "is not a domain name: write e.g. --dns-search=example.com"
}

var dnsOpt = regexp.MustCompile(`^[A-Za-z0-9_-]+(:[0-9]+)?$`)

func dnsOptValue(v string) string {
	if dnsOpt.MatchString(v) {
		return ""
	}
	return "is not a resolver option: write e.g. --dns-opt=ndots:2 or --dns-opt=use-vc"
}

func cidrValue(v string) string {
	if _, _, err := net.ParseCIDR(v); err != nil {
		return "is not an address range: write e.g. 10.10.0.0/16"
	}
	return ""
}

func bipValue(v string) string {
	if _, _, err := net.ParseCIDR(v); err != nil {
		return "is not an address with its prefix: write e.g. --bip=10.20.0.1/24"
	}
	return ""
}

func addressPoolValue(v string) string {
	const how = "is not an address pool: write e.g. --default-address-pool=base=10.10.0.0/16,size=24"
	var base *net.IPNet
	size := -1
	for _, kv := range strings.Split(v, ",") {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "base":
			_, n, err := net.ParseCIDR(val)
			if err != nil {
				return how
			}
			base = n
		case "size":
			n, err := strconv.Atoi(val)
			if err != nil {
				return how
			}
			size = n
		default:
			return how
		}
	}
	if base == nil || size < 0 {
		return how
	}
	if ones, bits := base.Mask.Size(); size < ones || size > bits {
		return fmt.Sprintf("has size=%d, which is not from the base range's prefix /%d to /%d", size, ones, bits)
	}
	return ""
}

var ulimitNames = []string{"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}

func ulimitValue(v string) string {
	const how = "is not a ulimit: write e.g. --default-ulimit=nofile=1024:4096"
	name, limits, ok := strings.Cut(v, "=")
	if !ok || !slices.Contains(ulimitNames, name) {
		return how + " (names: " + strings.Join(ulimitNames, ", ") + ")"
	}
	soft, hard, hasHard := strings.Cut(limits, ":")
	s, err := strconv.ParseInt(soft, 10, 64)
	if err != nil || s < -1 {
		return how
	}
	if hasHard {
		h, err := strconv.ParseInt(hard, 10, 64)
		if err != nil || h < -1 || (h != -1 && s > h) || (h != -1 && s == -1) {
			return how + " (soft at most hard)"
		}
	}
	return ""
}

// featureSetting reads --feature's "name" or "name=bool".
func featureSetting(v string) (string, bool) {
	name, value, hasValue := strings.Cut(v, "=")
	if !hasValue {
		return name, true
	}
	on, _ := strconv.ParseBool(value)
	return name, on
}

func featureValue(v string) string {
	name, value, hasValue := strings.Cut(v, "=")
	if !config.ValidFeatureName(name) {
		return "is not a feature: write e.g. --feature=containerd-snapshotter or --feature=buildkit=false"
	}
	if _, err := strconv.ParseBool(value); hasValue && err != nil {
		return "does not set the feature to true or false"
	}
	return ""
}

func proxyValue(v string) string { return config.ProxyProblem(v) }

func noProxyValue(string) string { return "" }
