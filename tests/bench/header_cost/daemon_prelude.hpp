// What a daemon's main.cpp typically includes before any signal handling: the baseline for the
// cost gracefulstop adds in practice, where much of the standard library is parsed already.
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
