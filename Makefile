# civicmap: the two commands are `make run` and `make test`.
.PHONY: run test setup setup-browser build widget lint bench clean

# Set-up, build, embedded database, demo campaign, and serve http://localhost:8080
run: setup widget
	cargo build --release
	./target/release/civicmap serve --demo --listen 127.0.0.1:8080

# Set-up, then every test (Rust unit and integration tests against a real PostGIS).
test: setup-browser
	cargo fmt --all -- --check
	cargo clippy --all-targets --quiet -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
	./scripts/test.sh

setup:
	./scripts/setup.sh

setup-browser:
	./scripts/setup.sh --browser

build:
	cargo build --release

widget:
	@if [ -f widget/package.json ]; then cd widget && npm ci --no-audit --no-fund && npm run build; fi

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

bench: setup
	./benches/submissions-load.sh

clean:
	cargo clean
	rm -rf var widget/dist widget/node_modules
