/**
 * libc symbols joold needs that Deno has no API for: poll on a netlink descriptor with a wake pipe,
 * setsockopt for multicast options Deno's UDP API lacks, interface index lookup and getaddrinfo, and stdio
 * reads of /proc and /sys (Deno 2.9 asks for --allow-all to read those, whatever --allow-read allows), and
 * systemd's notification socket (Deno would ask for --allow-env to read `$NOTIFY_SOCKET` and --allow-write to
 * send to a unix socket path, and cannot address an abstract one).
 *
 * Only files in `ffi/` use this table; they wrap each call in a small safe function.
 * @module
 */

/** Symbol table of glibc (`libc.so.6`). */
export const LIBC_SYMBOLS = {
  /** int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms) — runs on a worker thread so the loop stays free. */
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32", nonblocking: true },
  /**
   * int poll(struct pollfd *fds, nfds_t nfds, int timeout_ms) — synchronous: it blocks the calling thread, so only
   * the kernel thread (a Worker of its own) waits in it.
   */
  poll_sync: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  /** int pipe2(int pipefd[2], int flags) */
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  /** ssize_t read(int fd, void *buf, size_t count) */
  read: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  /** ssize_t write(int fd, const void *buf, size_t count) */
  write: { parameters: ["i32", "buffer", "u64"], result: "i64" },
  /** int close(int fd) */
  close: { parameters: ["i32"], result: "i32" },
  /**
   * ssize_t recv(int sockfd, void *buf, size_t len, int flags). Declared with an i32 result (the low half of the
   * ssize_t: a datagram's length, or -1) and a usize length passed as a number: a 64-bit result comes back as a
   * BigInt, and a BigInt length must be one, so each call would allocate — and the kernel thread, which calls
   * this for every batch, must allocate nothing (`lib/kernel/handoff.ts`).
   */
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  /** ssize_t send(int sockfd, const void *buf, size_t len, int flags); declared as recv is, for the same reason. */
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  /**
   * int sched_setscheduler(pid_t pid, int policy, const struct sched_param *param) — pid 0: the calling thread
   * (Linux schedules threads, not processes); param is one int, the priority.
   */
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  /** int sched_getaffinity(pid_t pid, size_t cpusetsize, cpu_set_t *mask) — pid 0: the calling thread. */
  sched_getaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  /** int sched_setaffinity(pid_t pid, size_t cpusetsize, const cpu_set_t *mask) — pid 0: the calling thread. */
  sched_setaffinity: { parameters: ["i32", "usize", "buffer"], result: "i32" },
  /** int socket(int domain, int type, int protocol) */
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  /**
   * ssize_t sendto(int sockfd, const void *buf, size_t len, int flags, const struct sockaddr *dest_addr,
   *                socklen_t addrlen)
   */
  sendto: { parameters: ["i32", "buffer", "u64", "i32", "buffer", "u32"], result: "i64" },
  /** char *getenv(const char *name) — name NUL-terminated; the result is the environment's own string or NULL. */
  getenv: { parameters: ["buffer"], result: "pointer" },
  /** int socketpair(int domain, int type, int protocol, int sv[2]) */
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  /** ssize_t recvmsg(int sockfd, struct msghdr *msg, int flags) — the msghdr points at buffers the caller keeps. */
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i64" },
  /** int setsockopt(int sockfd, int level, int optname, const void *optval, socklen_t optlen) */
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  /** int getsockopt(int sockfd, int level, int optname, void *optval, socklen_t *optlen) */
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  /**
   * int ioctl(int fd, unsigned long request, void *arg) — variadic in C; called here only with one pointer
   * argument (SIOCGIFMTU and its struct ifreq), which the x86-64 and arm64 calling conventions pass as a fixed one.
   */
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  /** int getsockname(int sockfd, struct sockaddr *addr, socklen_t *addrlen) */
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  /** unsigned int if_nametoindex(const char *ifname) — ifname NUL-terminated. */
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  /** char *if_indextoname(unsigned int ifindex, char *ifname) — ifname has IF_NAMESIZE (16) bytes. */
  if_indextoname: { parameters: ["u32", "buffer"], result: "pointer" },
  /**
   * int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
   *                 struct addrinfo **res) — node/service NUL-terminated or null.
   */
  getaddrinfo: { parameters: ["buffer", "buffer", "buffer", "buffer"], result: "i32" },
  /** void freeaddrinfo(struct addrinfo *res) */
  freeaddrinfo: { parameters: ["pointer"], result: "void" },
  /**
   * int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
   *                 struct addrinfo **res) — on a worker thread, so a DNS lookup does not block the event loop.
   * The buffers must stay referenced until the promise settles.
   */
  getaddrinfo_async: {
    name: "getaddrinfo",
    parameters: ["buffer", "buffer", "buffer", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  /** int getifaddrs(struct ifaddrs **ifap) */
  getifaddrs: { parameters: ["buffer"], result: "i32" },
  /** void freeifaddrs(struct ifaddrs *ifa) */
  freeifaddrs: { parameters: ["pointer"], result: "void" },
  /** const char *gai_strerror(int errcode) */
  gai_strerror: { parameters: ["i32"], result: "pointer" },
  /** char *strerror(int errnum) */
  strerror: { parameters: ["i32"], result: "pointer" },
  /** int *__errno_location(void) — valid only right after a synchronous call on the same thread. */
  __errno_location: { parameters: [], result: "pointer" },
  /** uid_t geteuid(void) */
  geteuid: { parameters: [], result: "u32" },
  /** FILE *fopen(const char *pathname, const char *mode) — both NUL-terminated (not variadic, unlike open). */
  fopen: { parameters: ["buffer", "buffer"], result: "pointer" },
  /** size_t fread(void *ptr, size_t size, size_t nmemb, FILE *stream) */
  fread: { parameters: ["buffer", "u64", "u64", "pointer"], result: "u64" },
  /** int ferror(FILE *stream) */
  ferror: { parameters: ["pointer"], result: "i32" },
  /** int fclose(FILE *stream) */
  fclose: { parameters: ["pointer"], result: "i32" },
  /** size_t fwrite(const void *ptr, size_t size, size_t nmemb, FILE *stream) */
  fwrite: { parameters: ["buffer", "u64", "u64", "pointer"], result: "u64" },
  /** int rename(const char *oldpath, const char *newpath) — both NUL-terminated. */
  rename: { parameters: ["buffer", "buffer"], result: "i32" },
  /** ssize_t readlink(const char *pathname, char *buf, size_t bufsiz) — pathname NUL-terminated; no NUL added. */
  readlink: { parameters: ["buffer", "buffer", "u64"], result: "i64" },
  /**
   * int stat(const char *pathname, struct stat *statbuf) — a real symbol from glibc 2.33 on (before, only
   * __xstat): optional, null where it is missing.
   */
  stat: { parameters: ["buffer", "buffer"], result: "i32", optional: true },
} as const satisfies Deno.ForeignLibraryInterface;

/** A libc call failed; `errno` says why. The FFI wrappers' errors extend it, each with its own name. */
export class ErrnoError extends Error {
  /**
   * A failed call.
   * @param step the call that failed, with what it was for
   * @param errno its errno
   */
  constructor(readonly step: string, readonly errno: number, options?: ErrorOptions) {
    super(`${step}: ${errnoText(errno)}`, options);
    this.name = "ErrnoError";
  }
}

/** Raised when a shared library cannot be loaded; the message names the Debian package to install. */
export class LibraryLoadError extends Error {
  /**
   * A library that could not be opened.
   * @param library file name passed to dlopen
   * @param debianPackage package that provides it
   */
  constructor(readonly library: string, readonly debianPackage: string, options?: ErrorOptions) {
    super(`cannot load ${library}; install the Debian package ${debianPackage}`, options);
    this.name = "LibraryLoadError";
  }
}

/** libc's symbols as {@link loadLibc} returns them. */
export type Libc = Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];
let libc: Libc | undefined;

/** Opens libc once and returns its symbols. Throws {@link LibraryLoadError}. */
export function loadLibc(): Libc {
  if (libc) return libc;
  try {
    libc = Deno.dlopen("libc.so.6", LIBC_SYMBOLS).symbols;
  } catch (cause) {
    throw new LibraryLoadError("libc.so.6", "libc6", { cause });
  }
  return libc;
}

/** Reads errno; meaningful only right after a synchronous libc call. */
export function lastErrno(): number {
  // errno's address is fixed for a thread, and each thread (Worker) has its own copy of this module: one view,
  // so the call allocates nothing (the kernel thread reads errno at the end of every drain).
  if (errnoView === undefined) {
    const p = loadLibc().__errno_location();
    if (p === null) return 0;
    errnoView = new Deno.UnsafePointerView(p);
  }
  return errnoView.getInt32();
}
let errnoView: Deno.UnsafePointerView | undefined;

/**
 * A size_t argument (`usize`) given as a number: Deno converts a number for a 64-bit integer parameter without
 * allocating, whereas a BigInt must be made first; its type declarations only admit the BigInt. For lengths of
 * buffers, which are always safe integers.
 */
export function sizeArg(bytes: number): bigint {
  return bytes as unknown as bigint;
}

/** strerror() text of an errno value. */
export function errnoText(errno: number): string {
  const p = loadLibc().strerror(errno);
  return p === null ? `errno ${errno}` : Deno.UnsafePointerView.getCString(p);
}

/** Encodes a JS string as a NUL-terminated C string buffer. */
export function cString(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new TextEncoder().encode(text);
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes);
  return out;
}
